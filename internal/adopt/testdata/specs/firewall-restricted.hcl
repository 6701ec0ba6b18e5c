domain = "meet.example.net"
auth "anonymous" {}
web { http_redirect = false }
firewall {
  ssh_port    = 2222
  ssh_sources = ["192.0.2.0/24", "2001:db8:10::/48"]
  port "https" {
    sources = ["203.0.113.0/24"]
    reason  = "office only"
  }
  port "turn-relay" { open = false }
  port "node-exporter" {
    port    = 9100
    sources = ["10.20.0.0/16"]
    reason  = "Prometheus node exporter"
  }
  port "rtp" {
    port     = 40000
    to_port  = 40100
    protocol = "udp"
  }
}
