# want: no file at
# want: relative paths resolve against the spec's directory
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = file("does-not-exist.txt")
}
