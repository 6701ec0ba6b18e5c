# want: Unknown placeholder in check
domain = "meet.example.com"
auth "anonymous" {}
template "x" {
  source      = "check_placeholder.hcl"
  destination = "/srv/x"
  check       = "true {{.Pth}}"
}
