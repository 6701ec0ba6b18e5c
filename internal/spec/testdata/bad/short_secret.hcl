# want: app_secret too short
# want: openssl rand -hex 32
# wantnot: tooshort-secret
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = "tooshort-secret"
}
