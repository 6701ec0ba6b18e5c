# want: Invalid domain
# wantnot: canary-detail-secret
domain = file("../data/not-a-domain.txt")
auth "anonymous" {}
