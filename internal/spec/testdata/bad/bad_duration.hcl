# want: Invalid duration
# want: "2h", "90s"
domain = "meet.example.com"
auth "jwt" {
  app_id         = "app"
  app_secret     = env("JITSI_AGENT_TEST_SECRET")
  token_lifetime = "two hours"
}
