# want: app_secret too short
# wantnot: LEAKa
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = "LEAKa\"bc"
}
