# want: Destination is a built-in file
domain = "meet.example.com"
auth "anonymous" {}
template "x" {
  source      = "template_cert.hcl"
  destination = "/etc/prosody/certs/meet.example.com.key"
}
