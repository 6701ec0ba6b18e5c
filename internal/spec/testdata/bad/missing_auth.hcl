# want: Missing auth block
# want: auth "jwt"
domain = "meet.example.com"
