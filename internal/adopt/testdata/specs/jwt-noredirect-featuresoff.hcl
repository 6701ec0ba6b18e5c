domain = "meet.example.com"
auth "jwt" {
  app_id     = "jitsi-app"
  app_secret = env("JITSI_APP_SECRET")
  moderators = "first-joiner"
}
meeting {
  lobby          = false
  breakout_rooms = false
  polls          = false
  force_mute     = false
}
web { http_redirect = false }
