# want: fleet-front.hcl:18:11
# want: Front and nginx on one host
# want: Put the front on a host of its own
# want: fleet-front.hcl:20:1
# want: host "signal2" has no address, but the front on host "edge" sends the rooms of shard "b" to its nginx
# want: fleet-front.hcl:25:11
# want: Invalid shard name
# wantnot: Shards without a front
domain = "meet.example.com"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
turn { enabled = false }
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
host "edge" {
  roles = ["front", "nginx"]
}
host "signal2" {
  shard = "b"
  roles = ["prosody", "jicofo", "nginx", "jvb"]
}
host "x" {
  shard = "b c"
  roles = ["coturn"]
}
