# want: not a regular file (a directory)
domain = "meet.example.com"
auth "jwt" {
  app_id     = file(".")
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
