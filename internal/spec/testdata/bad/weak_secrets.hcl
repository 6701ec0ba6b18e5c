# want: Weak app_secret
# want: placeholder text
# want: Weak TURN secret
# want: repeats a short unit
# want: Weak API key
# want: single character class
# want: openssl rand -hex 32
# wantnot: __REPLACE_WITH_A_64
# wantnot: q7z-q7z
# wantnot: aaaaaaaaaaaaaaaaaaaaaaaa
domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = "__REPLACE_WITH_A_64_CHARACTER_SECRET_FROM_YOUR_SECRET_STORE__"
}
turn {
  secret = "q7z-q7z-q7z-q7z-q7z-q7z-q7z-q7z-"
}
token_api {
  key "backend" {
    key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  }
}
