# want: SSH is configured apart
# want: Port number missing
# want: Did you mean the built-in port "turn"?
# want: Built-in port
# want: Invalid network
# want: has bits set beyond /8; write "10.0.0.0/8"
# want: Invalid port range
# want: SSH closed to everyone
# want: Duplicate firewall port
# want: Port is SSH
# want: protocol
domain = "meet.example.com"
auth "anonymous" {}
firewall {
  ssh_sources = []
  port "ssh" { port = 22 }
  port "turnz" { sources = ["10.0.0.0/8"] }
  port "https" {
    port    = 8443
    sources = ["not-a-net", "10.1.0.0/8"]
  }
  port "backend" {
    port    = 8000
    to_port = 7000
  }
  port "backend" { port = 8001 }
  port "sshalt" { port = 22 }
  port "dns" {
    port     = 53
    protocol = "sctp"
  }
}
