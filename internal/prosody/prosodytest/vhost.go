// Package prosodytest holds test material shared by the packages that read
// Prosody's configuration (internal/prosody's scanner, internal/doctor): a
// vhost file like the one jitsi-agent renders.
package prosodytest

// RenderedVhost looks like the file jitsi-agent renders (and like Debian's
// template), with the token settings and MUC modules given. Its comments and
// other hosts hold look-alike settings a scanner must not pick up.
func RenderedVhost(tokenLines string, mucModules string) string {
	return `-- Managed by jitsi-agent: rendered from the deployment spec.
--[[ A long comment with "quotes" and app_secret = "not-this-one" inside ]]
--[==[ a level-2 long comment ]] still inside ]==]
component_admins_as_room_owners = true
plugin_paths = { "/usr/share/jitsi-meet/prosody-plugins/" }
muc_mapper_domain_base = "meet.example.test"
external_service_secret = "turn-secret-never-printed"
external_services = {
    { type = "stun", host = "meet.example.test", port = 3478 },
    { type = "turn", host = "meet.example.test", port = 3478, transport = "udp", secret = true, ttl = 86400, algorithm = "turn" },
}
cross_domain_bosh = false
ssl = {
    protocol = "tlsv1_2+";
    ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
}
unlimited_jids = { "focus@auth.meet.example.test", "jvb@auth.meet.example.test" }
smacks_max_unacked_stanzas = 5
--https_ports = { }
-- app_id = "commented-out"

VirtualHost "meet.example.test"
` + tokenLines + `
    ssl = {
        key = "/etc/prosody/certs/meet.example.test.key";
        certificate = "/etc/prosody/certs/meet.example.test.crt";
    }
    modules_enabled = {
        "bosh";
        "websocket";
        "smacks";
    }
    c2s_require_encryption = false
    main_muc = "conference.meet.example.test"

VirtualHost "guest.meet.example.test"
    authentication = "jitsi-anonymous"
    app_id = "guest-should-not-leak"

Component "conference.meet.example.test" "muc"
    restrict_room_creation = true
    storage = "memory"
    modules_enabled = {
        "muc_hide_all";
        "muc_meeting_id";
        "muc_domain_mapper";
` + mucModules + `
        "muc_rate_limit";
        --"polls";
    }
    admins = { "focus@auth.meet.example.test" }

Component "internal.auth.meet.example.test" "muc"
    modules_enabled = { "muc_hide_all"; "ping"; }

VirtualHost "auth.meet.example.test"
    authentication = "internal_hashed"

Component "focus.meet.example.test" "client_proxy"
    target_address = "focus@auth.meet.example.test"
`
}

// GoodTokenLines are token settings that pass every check.
const GoodTokenLines = `    authentication = "token" -- do not delete me
    app_id = "myapp"
    app_secret = "s3cr3t-value-never-printed"
    signature_algorithm = "HS256"
    asap_accepted_issuers = { "myapp" }
    asap_accepted_audiences = { "myapp" }
    asap_require_room_claim = true
    enable_domain_verification = true
    allow_empty_token = false`

// TokenVerification enables token_verification in the MUC component.
const TokenVerification = `        "token_verification";`
