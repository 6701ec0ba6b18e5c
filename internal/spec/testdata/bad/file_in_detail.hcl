# want: Invalid domain
# wantnot: Invalid TURN
# wantnot: Invalid recorder domain
# wantnot: Path not usable
# wantnot: canary-detail-secret
domain = file("../data/not-a-domain.txt")
auth "anonymous" {}
