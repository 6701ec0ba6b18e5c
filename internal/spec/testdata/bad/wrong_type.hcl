# want: Unsuitable value type
# want: wrong_type.hcl:6:
domain = "meet.example.com"
auth "anonymous" {}
meeting {
  max_participants = "many"
}
