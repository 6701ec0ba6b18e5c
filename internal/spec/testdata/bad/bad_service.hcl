# want: Unknown service
# want: Did you mean "jicofo"
# want: Invalid value for restart
domain = "meet.example.com"
auth "anonymous" {}
service "jicof" {}
service "jvb" {
  restart = "later"
}
