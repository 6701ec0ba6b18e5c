# want: Port conflict
# want: 3478/udp is used by turn.port (coturn STUN/TURN over UDP) and videobridge.udp_port
# want: port_conflict.hcl:11:14
# want: 5222/tcp is used by web.https_port (nginx HTTPS
# want: and prosody.c2s_port (Prosody c2s
# want: change web.https_port or prosody.c2s_port
# want: 5280/tcp is used by metrics.listen
domain = "meet.example.com"
auth "anonymous" {}
videobridge {
  udp_port = 3478
}
web {
  https_port = 5222
}
metrics {
  listen = "127.0.0.1:5280"
}
