# host: jvb2
domain = "meet.example.com"
imported_secrets = true
host "xmpp1" {
  address = "xmpp1"
  roles   = ["prosody", "jicofo", "nginx", "coturn"]
}
host "jvb2" {
  roles       = ["jvb"]
  public_ips  = ["203.0.113.20"]
}
auth "anonymous" {}
