# want: Domain must be lower case
domain = "Meet.Example.com"
auth "anonymous" {}
