# want: Port conflict
# want: 3478/udp is used by videobridge.udp_port and turn.port
domain = "meet.example.com"
auth "anonymous" {}
videobridge {
  udp_port = 3478
}
