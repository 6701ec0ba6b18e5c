# want: which holds no configuration
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = file("/dev/zero")
}
