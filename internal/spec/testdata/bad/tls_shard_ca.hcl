# want: tls_shard_ca.hcl:6:14
# want: tls.shard_ca "/etc/my ca.pem": HAProxy's configuration takes it as one word
domain = "meet.example.com"
auth "anonymous" {}
tls {
  shard_ca = "/etc/my ca.pem"
}
