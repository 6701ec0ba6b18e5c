# want: fleet-shards-nofront.hcl:18:13
# want: Shards without a front
# want: roles = ["front"]
# want: fleet-shards-nofront.hcl:24:13
# want: More than one host runs prosody in shard "eu2"
# want: No host runs jvb in shard "eu2"
# want: Add it to at least one host's roles (a host block with shard = "eu2")
domain = "meet.example.com"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
turn { enabled = false }
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
host "signal2" {
  address = "10.0.1.1"
  shard   = "eu2"
  roles   = ["prosody", "jicofo", "nginx"]
}
host "xmpp2" {
  address = "10.0.1.2"
  shard   = "eu2"
  roles   = ["prosody"]
}
