domain  = "meet.example.com"
tenants = true
host "bridge-1" {
  public_ips  = ["203.0.113.10", "198.51.100.20"]
  private_ips = ["10.0.0.10", "10.0.0.11"]
}
auth "jwt" {
  app_id              = "my-app"
  app_secret          = env("JITSI_APP_SECRET")
  algorithm           = "HS512"
  accepted_issuers    = ["my-app", "other-issuer"]
  accepted_audiences  = ["my-app", "jitsi"]
  domain_verification = false
  allow_empty_token   = false
  guests              = true
}
meeting {
  start_audio_muted = true
  start_video_muted = true
  lobby             = true
  max_participants  = 50
  force_mute        = false
  chat              = false
  screen_sharing    = false
  breakout_rooms    = false
  polls             = false
  reactions         = false
  prejoin           = false
  p2p               = false
  recording {
    enabled         = true
    recorder_domain = "hidden.meet.example.com"
    brewery         = "RecBrewery"
    whitelist       = ["transcriber@hidden.meet.example.com"]
  }
}
videobridge {
  udp_port     = 10001
  stun_servers = ["stun.example.com:3478"]
  websockets   = true
  brewery      = "Bridges"
  health_url   = "http://127.0.0.1:8181/about/health"
}
jicofo {
  max_audio_senders = 10
  max_video_senders = 20
}
turn { deny_private_peers = false }
tls {
  certificate = "/etc/ssl/meet/fullchain.pem"
  key         = "/etc/ssl/meet/privkey.pem"
  acme {
    email       = "ops@example.com"
    extra_names = ["www.meet.example.com"]
    rsa         = true
    listen      = "127.0.0.1:8403"
  }
}
web {
  http_port  = 8081
  https_port = 8443
  root       = "/srv/jitsi-meet"
}
prosody {
  c2s_port = 5333
}
