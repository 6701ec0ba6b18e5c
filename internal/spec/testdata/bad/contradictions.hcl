# want: Attribute only valid for JWT auth
# want: Token moderators need JWT auth
# want: Guests need an authenticated mode
domain = "meet.example.com"
auth "anonymous" {
  app_id     = "x"
  moderators = "token"
  guests     = true
}
