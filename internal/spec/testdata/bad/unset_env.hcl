# want: environment variable JITSI_AGENT_TEST_UNSET_VAR is not set
# want: unset_env.hcl:6:16
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = env("JITSI_AGENT_TEST_UNSET_VAR")
}
