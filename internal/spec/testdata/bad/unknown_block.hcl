# want: Unsupported block type
# want: Did you mean "meeting"
domain = "meet.example.com"
auth "anonymous" {}
meting {
  lobby = true
}
