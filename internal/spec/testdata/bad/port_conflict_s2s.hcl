# want: Port conflict
# want: 5269/tcp is used by web.https_port (nginx HTTPS: the web app, config.js, BOSH and XMPP websockets) and prosody.s2s_port
# want: port_conflict_s2s.hcl:12:16
# want: 8888/tcp is used by jicofo REST
# want: videobridge.health_url
domain = "meet.example.com"
auth "anonymous" {}
prosody {
  s2s_port = 5269
}
web {
  https_port = 5269
}
videobridge {
  health_url = "http://127.0.0.1:8888/about/health"
}
