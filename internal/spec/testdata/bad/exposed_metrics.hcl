# want: Listener must be on loopback
domain = "meet.example.com"
auth "anonymous" {}
metrics {
  listen = "0.0.0.0:9137"
}
