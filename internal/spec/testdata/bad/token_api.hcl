# want: Exposed token API needs TLS
# want: API key too short
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
token_api {
  listen = "0.0.0.0:8450"
  key "backend" {
    key = "short"
  }
}
