# want: fleet-cluster-secret.hcl:7:1
# want: Cluster secret too short
# want: Two sources of shared secrets
# want: address = "not an address" in host "jvb1" is neither an IP address nor a DNS name
domain = "meet.example.com"
imported_secrets = true
cluster_secret = "abc123"
auth "anonymous" {}
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb1" {
  address = "not an address"
  roles   = ["jvb"]
}
