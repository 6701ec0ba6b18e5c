# want: holds no configuration
domain = "meet.example.com"
auth "jwt" {
  app_id     = file("/proc/self/environ")
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
