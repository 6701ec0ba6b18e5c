# want: Destination must be absolute
# want: Template source not readable
# want: Invalid mode
domain = "meet.example.com"
auth "anonymous" {}
template "x" {
  source      = "nope.tmpl"
  destination = "relative/.env"
  mode        = "rw-r--r--"
}
