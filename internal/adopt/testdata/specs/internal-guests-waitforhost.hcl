domain = "meet.example.com"
auth "internal" {
  guests     = true
  moderators = "wait-for-host"
}
meeting {
  max_participants        = 25
  start_audio_muted_after = 5
  start_video_muted_after = 3
  require_display_name    = true
}
turn {
  host           = "turn.example.com"
  port           = 3479
  tls_port       = 5350
  realm          = "example.com"
  relay_min_port = 40000
  relay_max_port = 40100
  credential_ttl = "12h"
}
prosody {
  c2s_port   = 5223
  http_port  = 5290
  s2s_port   = 5269
  https_port = 5291
}
