# want: Unsupported argument
# want: Did you mean "domain"
# want: unknown_attr.hcl:4:1
domian = "meet.example.com"
auth "anonymous" {}
