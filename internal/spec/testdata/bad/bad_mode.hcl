# want: Unknown auth mode
# want: Did you mean "jwt"
domain = "meet.example.com"
auth "jtw" {}
