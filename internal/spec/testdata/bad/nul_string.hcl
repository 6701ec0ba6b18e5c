# want: Invalid character
# want: NUL byte
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app\u0000id"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
