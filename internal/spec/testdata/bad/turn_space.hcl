# want: TURN secret has surrounding white space
domain = "meet.example.com"
auth "anonymous" {}
turn {
  secret = env("JITSI_AGENT_TEST_SECRET_NL")
}
