# The app team's server: a self-hosted Jitsi Meet with JWT authentication for
# their Flutter app, the backend's .env and the app's Dart config rendered from
# the same truth. `make demo` renders it into ./demo-out without root.
#
#   JITSI_APP_SECRET=$(openssl rand -hex 32) JOIN_API_KEY=$(openssl rand -hex 32) \
#     jitsi-agent validate examples/meet.hcl

variable "domain" {
  default     = "meet.example.com"
  description = "Public host name and XMPP domain (JITSI_AGENT_VAR_domain or -var domain=... overrides it)"
}

locals {
  app_id     = "my-app-id"
  backend    = "/srv/app"
  admin_mail = "ops@${var.domain}"
}

domain  = var.domain
tenants = false

host "meet1" {
  public_ips  = ["203.0.113.10"] # what the videobridge and coturn announce behind NAT
  private_ips = ["10.0.0.10"]
}

auth "jwt" {
  app_id              = local.app_id
  app_secret          = env("JITSI_APP_SECRET") # never inline; at least 32 characters
  token_lifetime      = "2h"                    # the app's JITSI_JWT_EXPIRATION=7200
  accepted_audiences  = [local.app_id]
  domain_verification = true
  guests              = false   # true: an anonymous guest domain may join rooms a host opened
  moderators          = "token" # context.user.moderator decides (mod_token_affiliation)
}

meeting {
  start_audio_muted    = true
  start_video_muted    = true
  lobby                = true # the waiting room, switched on per room by a moderator
  max_participants     = 50
  force_mute           = true # AV moderation available to moderators
  chat                 = true
  screen_sharing       = true
  breakout_rooms       = true
  polls                = true
  require_display_name = true

  recording {
    enabled = false
  }
}

videobridge {
  udp_port = 10000
  # stun_servers default to this host's own coturn (meet.example.com:3478)
}

turn {
  # secret omitted: generated once and kept in the state directory
  relay_min_port = 49160
  relay_max_port = 49200
}

tls {
  certificate = "/etc/jitsi/meet/${var.domain}.crt"
  key         = "/etc/jitsi/meet/${var.domain}.key"
}

service "jicofo" {
  restart = "defer" # a restart ends every meeting: wait for `apply --restart-deferred`
}

service "jvb" {
  restart = "defer"
}

template "backend-env" {
  source      = "templates/backend.env.tmpl"
  destination = "${local.backend}/.env"
  mode        = "0640"
  group       = "root"
  notify      = ["app-backend.service"]
}

template "flutter-config" {
  source      = "templates/jitsi_config.dart.tmpl"
  destination = "${local.backend}/frontend/lib/services/jitsi_config.dart"
  mode        = "0644"
}

# The join endpoint the app's backend calls (the guide's §6):
#   POST http://127.0.0.1:9138/api/v1/live/streams/{stream_id}/join
# served by `jitsi-agent run` (and `jitsi-agent token serve examples/meet.hcl`).
token_api {
  listen            = "127.0.0.1:9138" # loopback: the backend runs on this host
  unguessable_rooms = true             # room names carry an HMAC suffix
  key "backend" {
    key         = env("JOIN_API_KEY") # Authorization: Bearer <key>; openssl rand -hex 32
    grant_hosts = true                # the backend decides who is host (is_host)
  }

  # Meeting types the app names in the join request ("profile": "webinar").
  # Without a profile: token_lifetime above, is_host decides, Jitsi's features.
  profile "webinar" {
    lifetime  = "4h"
    moderator = "request" # only the presenter the backend marks is_host
    features  = { "screen-sharing" = true, "recording" = false }
  }
  profile "drop-in" {
    lifetime  = "30m"
    moderator = "never" # nobody can mute or kick others
  }
}

metrics {
  listen = "127.0.0.1:9137"
}

# The host's firewall: an nftables table of its own (table inet jitsi_agent)
# opening exactly what this deployment serves (80 and 443/tcp, 10000/udp,
# 3478/udp, 5349/tcp, the relay range above) plus SSH; everything else
# inbound is dropped. Other tables (Docker, fail2ban) are left alone.
# Over SSH, apply firewall changes with `jitsi-agent apply --confirm 2m`.
firewall {
  ssh_port = 22
  # ssh_sources = ["198.51.100.0/24"]   # only the office may log in
  # port "backend" {                    # an extra port, e.g. the app's API
  #   port    = 8000
  #   sources = ["10.0.0.0/8"]
  #   reason  = "app backend, LAN only"
  # }
}
