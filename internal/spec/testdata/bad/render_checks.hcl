# want: Invalid TURN realm
# want: turn.realm contains a control character
# want: web.root contains "$"
# want: tls.key contains "$"
# want: render_checks.hcl:10:
# want: render_checks.hcl:13:
domain = "meet.example.com"
auth "anonymous" {}
turn {
  realm = "meet.example.com\nexternal-ip=1.2.3.4"
}
web {
  root = "/usr/share/jitsi-$meet"
}
tls {
  key = "/etc/ssl/$host.key"
}
