-- Managed by jitsi-agent: rendered from the deployment spec. Local edits are
-- overwritten or reported as drift; change the spec instead.
-- Prosody virtual hosts and components for meet.example.com.
-- The markers below (authentication "... -- do not delete me", --"polls";,
-- unlimited_jids, component_admins_as_room_owners) are kept so the
-- jitsi-meet-prosody and jitsi-meet-tokens postinst scripts leave this file alone.

-- Prosody 13: component admins (focus) are not room owners by default.
component_admins_as_room_owners = true

plugin_paths = { "/usr/share/jitsi-meet/prosody-plugins/" }

-- Domain mapper (and token verification, wait for host) need the base domain.
muc_mapper_domain_base = "meet.example.com"

-- TURN credentials for clients (XEP-0215), shared secret with coturn.
-- Global, so every host and room_metadata_component see them.
external_service_secret = "test-turn-secret-c0ffee42"
external_services = {
    { type = "stun", host = "signal-b.internal.example.com", port = 3478, transport = "udp" },
    { type = "turn", host = "signal-b.internal.example.com", port = 3478, transport = "udp", secret = true, ttl = 86400, algorithm = "turn" },
    { type = "turns", host = "signal-b.internal.example.com", port = 5349, transport = "tcp", secret = true, ttl = 86400, algorithm = "turn" },
}

consider_bosh_secure = true
consider_websocket_secure = true

-- https://ssl-config.mozilla.org/#server=prosody&version=0.12&config=intermediate
ssl = {
    protocol = "tlsv1_2+";
    ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
}

unlimited_jids = { "focus@auth.meet.example.com", "jvb@auth.meet.example.com" }

smacks_max_unacked_stanzas = 5
smacks_hibernation_time = 60
smacks_max_old_sessions = 1

-- Listeners (the spec's prosody block): c2s for jicofo and the videobridge,
-- HTTP on loopback for BOSH and websocket behind nginx. Server-to-server and
-- Prosody's own HTTPS are off unless the spec turns them on.
c2s_ports = { 5222 }
http_ports = { 5280 }
https_ports = { }
s2s_ports = { }

VirtualHost "meet.example.com"
    authentication = "token" -- do not delete me
    app_id = "jitsi-app"
    app_secret = "ae971cee7d535e06e3d36d3d3eb4a02c47ff6d19"
    signature_algorithm = "HS256"
    asap_accepted_issuers = { "jitsi-app" }
    asap_accepted_audiences = { "jitsi-app" }
    asap_require_room_claim = true
    enable_domain_verification = true
    allow_empty_token = false
    ssl = {
        key = "/etc/prosody/certs/meet.example.com.key";
        certificate = "/etc/prosody/certs/meet.example.com.crt";
    }
    modules_enabled = {
        "bosh";
        "websocket";
        "smacks";
        "ping";
        "external_services";
        "features_identity";
        "conference_duration";
        "muc_lobby_rooms";
        "muc_breakout_rooms";
    }
    c2s_require_encryption = false
    main_muc = "conference.meet.example.com"
    lobby_muc = "lobby.meet.example.com"
    breakout_rooms_muc = "breakout.meet.example.com"

Component "conference.meet.example.com" "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {
        "muc_hide_all";
        "muc_meeting_id";
        "muc_domain_mapper";
        "token_verification";
        "token_affiliation";
        "muc_rate_limit";
        "muc_password_whitelist";
        --"polls"; -- client polls are served by the polls component
    }
    admins = { "focus@auth.meet.example.com" }
    muc_password_whitelist = { "focus@auth.meet.example.com" }
    muc_room_locking = false
    muc_room_default_public_jids = true

Component "breakout.meet.example.com" "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {
        "muc_hide_all";
        "muc_meeting_id";
        "muc_domain_mapper";
        "muc_rate_limit";
    }
    admins = { "focus@auth.meet.example.com" }
    muc_room_locking = false
    muc_room_default_public_jids = true

-- Internal MUC: the jvb and jibri breweries.
Component "internal.auth.meet.example.com" "muc"
    storage = "memory"
    modules_enabled = {
        "muc_hide_all";
        "ping";
    }
    admins = { "focus@auth.meet.example.com", "jvb@auth.meet.example.com" }
    muc_room_locking = false
    muc_room_default_public_jids = true

-- jicofo and the videobridge log in here with STARTTLS; jitsi-agent's internal
-- CA issues the certificate and installs the CA for their trust store.
VirtualHost "auth.meet.example.com"
    ssl = {
        key = "/etc/prosody/certs/auth.meet.example.com.key";
        certificate = "/etc/prosody/certs/auth.meet.example.com.crt";
    }
    modules_enabled = {
        "limits_exception";
        "smacks";
    }
    authentication = "internal_hashed"
    smacks_hibernation_time = 15

-- Jicofo logs in as a client; this proxies focus.DOMAIN to it.
Component "focus.meet.example.com" "client_proxy"
    target_address = "focus@auth.meet.example.com"

Component "speakerstats.meet.example.com" "speakerstats_component"
    muc_component = "conference.meet.example.com"

Component "endconference.meet.example.com" "end_conference"
    muc_component = "conference.meet.example.com"

Component "avmoderation.meet.example.com" "av_moderation_component"
    muc_component = "conference.meet.example.com"

Component "lobby.meet.example.com" "muc"
    storage = "memory"
    restrict_room_creation = true
    muc_room_locking = false
    muc_room_default_public_jids = true
    modules_enabled = {
        "muc_hide_all";
        "muc_rate_limit";
    }

Component "metadata.meet.example.com" "room_metadata_component"
    muc_component = "conference.meet.example.com"
    breakout_rooms_component = "breakout.meet.example.com"

Component "polls.meet.example.com" "polls_component"
