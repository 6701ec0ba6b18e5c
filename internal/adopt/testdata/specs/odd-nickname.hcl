domain = "meet.example.com"
auth "anonymous" {}
videobridge {
  nickname = "JVB_1"
}
