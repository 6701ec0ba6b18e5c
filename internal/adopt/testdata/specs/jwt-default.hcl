domain = "meet.example.com"
auth "jwt" {
  app_id     = "jitsi-app"
  app_secret = env("JITSI_APP_SECRET")
}
