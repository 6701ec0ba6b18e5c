package spec

import "github.com/hashicorp/hcl/v2"

// The raw HCL schema. Optional attributes are pointers so "unset" differs
// from zero; defaults are applied in resolve(). Each block keeps its body so
// semantic diagnostics can point at the exact attribute.

type rawHeader struct {
	Variables []rawVariable `hcl:"variable,block"`
	Locals    []rawLocals   `hcl:"locals,block"`
	Rest      hcl.Body      `hcl:",remain"`
}

type rawVariable struct {
	Name        string         `hcl:"name,label"`
	Default     hcl.Expression `hcl:"default,optional"`
	Description *string        `hcl:"description,optional"`
	Sensitive   *bool          `hcl:"sensitive,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type rawLocals struct {
	Attrs hcl.Attributes `hcl:",remain"`
}

type rawSpec struct {
	Domain       string  `hcl:"domain"`
	Tenants      *bool   `hcl:"tenants,optional"`
	TemplatesDir *string `hcl:"templates_dir,optional"`
	StateDir     *string `hcl:"state_dir,optional"`
	Backups      *int    `hcl:"backups,optional"`
	Drift        *string `hcl:"drift,optional"`
	// ClusterSecret derives every shared internal secret of a multi-host spec.
	ClusterSecret hcl.Expression `hcl:"cluster_secret,optional"`
	// ImportedSecrets: the shared secrets were imported into each host's
	// state directory (jitsi-agent import) and are kept equal by hand.
	ImportedSecrets *bool `hcl:"imported_secrets,optional"`

	Hosts       []rawHost       `hcl:"host,block"`
	Auth        []rawAuth       `hcl:"auth,block"`
	Meeting     *rawMeeting     `hcl:"meeting,block"`
	Videobridge *rawVideobridge `hcl:"videobridge,block"`
	Jicofo      *rawJicofo      `hcl:"jicofo,block"`
	TURN        *rawTURN        `hcl:"turn,block"`
	TLS         *rawTLS         `hcl:"tls,block"`
	Web         *rawWeb         `hcl:"web,block"`
	Services    []rawService    `hcl:"service,block"`
	Templates   []rawTemplate   `hcl:"template,block"`
	Watch       *rawWatch       `hcl:"watch,block"`
	Metrics     *rawMetrics     `hcl:"metrics,block"`
	TokenAPI    *rawTokenAPI    `hcl:"token_api,block"`
	Extra       *rawExtra       `hcl:"extra,block"`
	Prosody     *rawProsody     `hcl:"prosody,block"`
	Firewall    *rawFirewall    `hcl:"firewall,block"`
	Bootstrap   *rawBootstrap   `hcl:"bootstrap,block"`

	Body hcl.Body `hcl:",body"`
}

type rawProsody struct {
	C2SPort   *int     `hcl:"c2s_port,optional"`
	HTTPPort  *int     `hcl:"http_port,optional"`
	S2SPort   *int     `hcl:"s2s_port,optional"`
	HTTPSPort *int     `hcl:"https_port,optional"`
	Body      hcl.Body `hcl:",body"`
}

type rawHost struct {
	Name       string    `hcl:"name,label"`
	PublicIPs  []string  `hcl:"public_ips,optional"`
	PrivateIPs []string  `hcl:"private_ips,optional"`
	Address    *string   `hcl:"address,optional"`
	Shard      *string   `hcl:"shard,optional"`
	Roles      []string  `hcl:"roles,optional"`
	Body       hcl.Body  `hcl:",body"`
	DefRange   hcl.Range `hcl:",def_range"`
}

type rawAuth struct {
	Mode               string         `hcl:"mode,label"`
	AppID              *string        `hcl:"app_id,optional"`
	AppSecret          hcl.Expression `hcl:"app_secret,optional"`
	Algorithm          *string        `hcl:"algorithm,optional"`
	AcceptedIssuers    []string       `hcl:"accepted_issuers,optional"`
	AcceptedAudiences  []string       `hcl:"accepted_audiences,optional"`
	TokenLifetime      *string        `hcl:"token_lifetime,optional"`
	DomainVerification *bool          `hcl:"domain_verification,optional"`
	AllowEmpty         *bool          `hcl:"allow_empty_token,optional"`
	Guests             *bool          `hcl:"guests,optional"`
	Moderators         *string        `hcl:"moderators,optional"`
	Body               hcl.Body       `hcl:",body"`
	DefRange           hcl.Range      `hcl:",def_range"`
	LabelRange         hcl.Range      `hcl:"mode,label_range"`
}

type rawMeeting struct {
	StartAudioMuted      *bool          `hcl:"start_audio_muted,optional"`
	StartVideoMuted      *bool          `hcl:"start_video_muted,optional"`
	StartAudioMutedAfter *int           `hcl:"start_audio_muted_after,optional"`
	StartVideoMutedAfter *int           `hcl:"start_video_muted_after,optional"`
	Lobby                *bool          `hcl:"lobby,optional"`
	MaxParticipants      *int           `hcl:"max_participants,optional"`
	ForceMute            *bool          `hcl:"force_mute,optional"`
	Chat                 *bool          `hcl:"chat,optional"`
	ScreenSharing        *bool          `hcl:"screen_sharing,optional"`
	BreakoutRooms        *bool          `hcl:"breakout_rooms,optional"`
	Polls                *bool          `hcl:"polls,optional"`
	Reactions            *bool          `hcl:"reactions,optional"`
	Prejoin              *bool          `hcl:"prejoin,optional"`
	RequireDisplayName   *bool          `hcl:"require_display_name,optional"`
	P2P                  *bool          `hcl:"p2p,optional"`
	MaxDuration          hcl.Expression `hcl:"max_duration,optional"`
	EndWhenHostLeaves    hcl.Expression `hcl:"end_when_host_leaves,optional"`
	Recording            *rawRecording  `hcl:"recording,block"`
	Body                 hcl.Body       `hcl:",body"`
}

type rawRecording struct {
	Enabled        *bool    `hcl:"enabled,optional"`
	Livestreaming  *bool    `hcl:"livestreaming,optional"`
	RecorderDomain *string  `hcl:"recorder_domain,optional"`
	Brewery        *string  `hcl:"brewery,optional"`
	TrustedDomains []string `hcl:"trusted_domains,optional"`
	Whitelist      []string `hcl:"whitelist,optional"`
	PendingTimeout *string  `hcl:"pending_timeout,optional"`
	Body           hcl.Body `hcl:",body"`
}

type rawVideobridge struct {
	UDPPort     *int     `hcl:"udp_port,optional"`
	StunServers []string `hcl:"stun_servers,optional"`
	Websockets  *bool    `hcl:"websockets,optional"`
	Nickname    *string  `hcl:"nickname,optional"`
	Brewery     *string  `hcl:"brewery,optional"`
	HealthURL   *string  `hcl:"health_url,optional"`
	Body        hcl.Body `hcl:",body"`
}

type rawJicofo struct {
	MaxAudioSenders *int     `hcl:"max_audio_senders,optional"`
	MaxVideoSenders *int     `hcl:"max_video_senders,optional"`
	HealthURL       *string  `hcl:"health_url,optional"`
	Body            hcl.Body `hcl:",body"`
}

type rawTURN struct {
	Enabled          *bool          `hcl:"enabled,optional"`
	Secret           hcl.Expression `hcl:"secret,optional"`
	Host             *string        `hcl:"host,optional"`
	Port             *int           `hcl:"port,optional"`
	TLSPort          *int           `hcl:"tls_port,optional"`
	Realm            *string        `hcl:"realm,optional"`
	RelayMinPort     *int           `hcl:"relay_min_port,optional"`
	RelayMaxPort     *int           `hcl:"relay_max_port,optional"`
	CredentialTTL    *string        `hcl:"credential_ttl,optional"`
	DenyPrivatePeers *bool          `hcl:"deny_private_peers,optional"`
	Body             hcl.Body       `hcl:",body"`
}

type rawTLS struct {
	Certificate *string  `hcl:"certificate,optional"`
	Key         *string  `hcl:"key,optional"`
	ShardCA     *string  `hcl:"shard_ca,optional"`
	ACME        *rawACME `hcl:"acme,block"`
	Body        hcl.Body `hcl:",body"`
}

type rawACME struct {
	Email       *string  `hcl:"email,optional"`
	Directory   *string  `hcl:"directory,optional"`
	Staging     *bool    `hcl:"staging,optional"`
	ExtraNames  []string `hcl:"extra_names,optional"`
	RSA         *bool    `hcl:"rsa,optional"`
	RenewBefore *string  `hcl:"renew_before,optional"`
	Listen      *string  `hcl:"listen,optional"`
	Body        hcl.Body `hcl:",body"`
}

type rawWeb struct {
	HTTPPort     *int     `hcl:"http_port,optional"`
	HTTPSPort    *int     `hcl:"https_port,optional"`
	Root         *string  `hcl:"root,optional"`
	HTTPRedirect *bool    `hcl:"http_redirect,optional"`
	Body         hcl.Body `hcl:",body"`
}

type rawService struct {
	Name      string    `hcl:"name,label"`
	Unit      *string   `hcl:"unit,optional"`
	Enabled   *bool     `hcl:"enabled,optional"`
	Restart   *string   `hcl:"restart,optional"`
	HealthURL *string   `hcl:"health_url,optional"`
	Drift     *string   `hcl:"drift,optional"`
	Body      hcl.Body  `hcl:",body"`
	DefRange  hcl.Range `hcl:",def_range"`
	NameRange hcl.Range `hcl:"name,label_range"`
}

type rawTemplate struct {
	Name        string    `hcl:"name,label"`
	Source      string    `hcl:"source"`
	Destination string    `hcl:"destination"`
	Mode        *string   `hcl:"mode,optional"`
	Owner       *string   `hcl:"owner,optional"`
	Group       *string   `hcl:"group,optional"`
	Notify      []string  `hcl:"notify,optional"`
	Check       *string   `hcl:"check,optional"`
	Drift       *string   `hcl:"drift,optional"`
	Body        hcl.Body  `hcl:",body"`
	DefRange    hcl.Range `hcl:",def_range"`
}

type rawWatch struct {
	Quiet  *string  `hcl:"quiet,optional"`
	Max    *string  `hcl:"max,optional"`
	Rescan *string  `hcl:"rescan,optional"`
	Body   hcl.Body `hcl:",body"`
}

type rawExtra struct {
	Prosody         *string             `hcl:"prosody,optional"`
	Jicofo          *string             `hcl:"jicofo,optional"`
	JVB             *string             `hcl:"jvb,optional"`
	SipCommunicator *string             `hcl:"sip_communicator,optional"`
	ConfigJS        *string             `hcl:"config_js,optional"`
	Nginx           *string             `hcl:"nginx,optional"`
	NginxServer     *string             `hcl:"nginx_server,optional"`
	Coturn          *string             `hcl:"coturn,optional"`
	Jibri           *string             `hcl:"jibri,optional"`
	ProsodyModules  map[string][]string `hcl:"prosody_modules,optional"`
	Body            hcl.Body            `hcl:",body"`
}

type rawMetrics struct {
	Listen *string  `hcl:"listen,optional"`
	Body   hcl.Body `hcl:",body"`
}

type rawTokenAPI struct {
	Listen           *string           `hcl:"listen,optional"`
	TLSCertificate   *string           `hcl:"tls_certificate,optional"`
	TLSKey           *string           `hcl:"tls_key,optional"`
	RateLimit        *float64          `hcl:"rate_limit,optional"`
	Burst            *int              `hcl:"burst,optional"`
	MaxBody          *int              `hcl:"max_body_bytes,optional"`
	UnguessableRooms *bool             `hcl:"unguessable_rooms,optional"`
	Keys             []rawAPIKey       `hcl:"key,block"`
	Profiles         []rawTokenProfile `hcl:"profile,block"`
	Body             hcl.Body          `hcl:",body"`
	DefRange         hcl.Range         `hcl:",def_range"`
}

type rawTokenProfile struct {
	Name      string          `hcl:"name,label"`
	Lifetime  *string         `hcl:"lifetime,optional"`
	Moderator *string         `hcl:"moderator,optional"`
	Features  map[string]bool `hcl:"features,optional"`
	Body      hcl.Body        `hcl:",body"`
	DefRange  hcl.Range       `hcl:",def_range"`
}

type rawAPIKey struct {
	Name       string         `hcl:"name,label"`
	Key        hcl.Expression `hcl:"key"`
	GrantHosts *bool          `hcl:"grant_hosts,optional"`
	Body       hcl.Body       `hcl:",body"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type rawFirewall struct {
	Enabled    *bool             `hcl:"enabled,optional"`
	SSHPort    *int              `hcl:"ssh_port,optional"`
	SSHSources []string          `hcl:"ssh_sources,optional"`
	Ports      []rawFirewallPort `hcl:"port,block"`
	Body       hcl.Body          `hcl:",body"`
	DefRange   hcl.Range         `hcl:",def_range"`
}

type rawFirewallPort struct {
	Name     string    `hcl:"name,label"`
	Port     *int      `hcl:"port,optional"`
	ToPort   *int      `hcl:"to_port,optional"`
	Protocol *string   `hcl:"protocol,optional"`
	Sources  []string  `hcl:"sources,optional"`
	Reason   *string   `hcl:"reason,optional"`
	Open     *bool     `hcl:"open,optional"`
	Body     hcl.Body  `hcl:",body"`
	DefRange hcl.Range `hcl:",def_range"`
}
