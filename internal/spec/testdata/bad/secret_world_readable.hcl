# want: World-readable secret
# want: reads .AppSecret
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
template "env" {
  source      = "../../../../examples/templates/backend.env.tmpl"
  destination = "/srv/app/.env"
  mode        = "0644"
}
