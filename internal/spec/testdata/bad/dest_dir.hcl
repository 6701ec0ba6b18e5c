# want: Destination is a directory
domain = "meet.example.com"
auth "anonymous" {}
template "a" {
  source      = "dest_dir.hcl"
  destination = "/srv/app/.env"
}
template "b" {
  source      = "dest_dir.hcl"
  destination = "/srv/app/"
}
