# want: Wildcards need DNS-01
domain = "meet.example.com"
auth "anonymous" {}
tls {
  acme {
    email       = "ops@example.com"
    extra_names = ["*.example.com"]
  }
}
