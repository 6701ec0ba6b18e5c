# want: fleet-no-secret.hcl:6:1
# want: Shared secrets not set
# want: Add cluster_secret = trimspace(file("/etc/jitsi-agent/cluster.secret"))
domain = "meet.example.com"
auth "anonymous" {}
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb1" {
  roles = ["jvb"]
}
