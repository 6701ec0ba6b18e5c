# want: fleet-no-address.hcl:10:1
# want: host "signal1" has no address, but host "jvb1" runs jvb and logs in to its Prosody (c2s port). Add address =
# want: fleet-no-address.hcl:13:1
# want: host "jvb1" has no address, but nginx on host "signal1" proxies its colibri websockets
# want: fleet-no-address.hcl:16:1
# want: host "turn1" has no address, but it runs coturn away from the web front and turn.host is not set
domain = "meet.example.com"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
host "signal1" {
  roles = ["prosody", "jicofo", "nginx"]
}
host "jvb1" {
  roles = ["jvb"]
}
host "turn1" {
  roles = ["coturn"]
}
videobridge { websockets = true }
