# want: Destination is a built-in file
domain = "meet.example.com"
auth "anonymous" {}
template "x" {
  source      = "builtin_dest.hcl"
  destination = "/etc/jitsi/jicofo/jicofo.conf"
}
