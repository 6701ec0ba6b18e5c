# want: Invalid character in spec
domain = "meet.example.com"
auth "anonymous" {}
# raw control character: 
