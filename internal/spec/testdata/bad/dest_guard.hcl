# want: contains ".."
# want: ends with "/"
# want: is under /proc
# want: inside jitsi-agent's own state directory
# want: is not in clean form
domain = "meet.example.com"
auth "anonymous" {}
state_dir = "/var/lib/jitsi-agent"
template "a" {
  source      = "../../../../examples/templates/jitsi_config.dart.tmpl"
  destination = "/srv/app/../../etc/shadow"
}
template "b" {
  source      = "../../../../examples/templates/jitsi_config.dart.tmpl"
  destination = "/srv/app/"
}
template "c" {
  source      = "../../../../examples/templates/jitsi_config.dart.tmpl"
  destination = "/proc/sys/kernel/core_pattern"
}
template "d" {
  source      = "../../../../examples/templates/jitsi_config.dart.tmpl"
  destination = "/var/lib/jitsi-agent/secrets/jvb_password"
}
template "e" {
  source      = "../../../../examples/templates/jitsi_config.dart.tmpl"
  destination = "/srv//app/x.env"
}
