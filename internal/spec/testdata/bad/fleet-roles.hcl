# want: fleet-roles.hcl:13:11
# want: Hosts "a" and "b" both run prosody
# want: No host runs jicofo
# want: No host runs jvb
# want: More than one host runs coturn
domain = "meet.example.com"
cluster_secret = "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9"
auth "anonymous" {}
host "a" {
  roles = ["prosody", "nginx", "coturn"]
}
host "b" {
  roles = ["prosody", "coturn"]
}
