# want: Invalid profile name
# want: Duplicate profile
# want: Token lifetime too long
# want: Invalid moderator rule
# want: Unknown feature
# want: Duration too short
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
token_api {
  key "backend" {
    key = env("JITSI_AGENT_TEST_SECRET")
  }
  profile "Webinar Large" {}
  profile "class" {
    lifetime = "960h"
  }
  profile "class" {}
  profile "tutoring" {
    moderator = "sometimes"
    features  = { "screensharing" = false }
  }
  profile "quick" {
    lifetime = "10s"
  }
}
