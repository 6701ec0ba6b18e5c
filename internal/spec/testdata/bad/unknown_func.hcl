# want: Call to unknown function
# want: Did you mean "trimspace"
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = trimspaces(env("JITSI_AGENT_TEST_SECRET"))
}
