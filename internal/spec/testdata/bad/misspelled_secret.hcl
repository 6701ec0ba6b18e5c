# want: Unsupported argument
# want: app_secrt = (sensitive)
# wantnot: canary-misspelled-0123456789abcdef
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secrt  = "canary-misspelled-0123456789abcdef"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
