# want: Missing required argument
# want: "domain" is required
auth "anonymous" {}
