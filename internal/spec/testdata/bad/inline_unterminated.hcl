# want: Error:
# wantnot: LEAKLEAKLEAK
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = "LEAKLEAKLEAK0123456789012345678901234
}
