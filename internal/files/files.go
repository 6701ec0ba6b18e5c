// Package files is the table of jitsi-agent's built-in components and the
// files it renders for them: one row per file, with everything the rest of
// the agent needs to know about it. Render, the reload order, the spec's
// list of built-in paths (user templates may not write them), the secret
// checks, the hardened unit's ReadWritePaths and the doctor's install hints
// are all derived from these two tables, so adding a file is one row here
// plus its template. A third table, Accounts, lists the XMPP accounts
// components log in with: adding one is a row there (its password is then
// generated, stored or derived, redacted, handed to the templates as
// .Passwords.NAME, and the account created by apply), plus the line that
// uses it in a template and, for import, where the host's file keeps it.
//
// The package is a leaf (no imports from this module): spec, render,
// systemd, plan and doctor all read it.
package files

import (
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Component names. Their order in Components is the reload order.
const (
	Prosody = "prosody"
	Jicofo  = "jicofo"
	JVB     = "jvb"
	Jibri   = "jibri"
	Nginx   = "nginx"
	Coturn  = "coturn"
	// Front is the HAProxy that routes each room to one shard (a host
	// with the "front" role; never a default role).
	Front = "front"
)

// Firewall is the component of host-wide rows that belong to no service:
// the agent's nftables ruleset, rendered on every host whose spec has a
// firewall block and loaded into the kernel by the agent itself.
const Firewall = "firewall"

// FirewallPath is where the firewall ruleset is rendered. It has a directory
// of its own so the hardened daemon can write it without write access to
// the spec's directory.
const FirewallPath = "/etc/jitsi-agent/firewall/ruleset.nft"

// Component is one built-in service.
type Component struct {
	Name string
	// Unit is the Debian unit name (the spec's service block may rename it).
	Unit string
	// Package is the Debian package that installs it (doctor's hint).
	Package string
	// Disruptive components end every running meeting when restarted
	// (service.restart = "defer" applies to them).
	Disruptive bool
	// When, if set, is the condition under which the component's service
	// is enabled by default (e.g. Jibri only with recording on); "" means
	// always.
	When Condition
	// OptIn components run only on hosts that name them in roles: a host
	// block without roles (and a spec without host blocks) runs every other
	// component.
	OptIn bool
}

// components lists the built-in components in reload order: Prosody first
// (Jicofo, JVB and Jibri log in to it), then Jicofo, JVB, Jibri (it joins
// Jicofo's brewery; a restart ends running recordings), nginx, coturn, then
// the front (HAProxy) once the shards behind it are reloaded.
var components = []Component{
	{Name: Prosody, Unit: "prosody.service", Package: "prosody"},
	{Name: Jicofo, Unit: "jicofo.service", Package: "jicofo", Disruptive: true},
	{Name: JVB, Unit: "jitsi-videobridge2.service", Package: "jitsi-videobridge2", Disruptive: true},
	{Name: Jibri, Unit: "jibri.service", Package: "jibri", Disruptive: true, When: Recording},
	{Name: Nginx, Unit: "nginx.service", Package: "nginx"},
	{Name: Coturn, Unit: "coturn.service", Package: "coturn", When: TURN},
	{Name: Front, Unit: "haproxy.service", Package: "haproxy", OptIn: true},
}

// Components returns the component table (a copy).
func Components() []Component { return slices.Clone(components) }

// ComponentNames returns the component names in reload order.
func ComponentNames() []string {
	out := make([]string, len(components))
	for i, c := range components {
		out[i] = c.Name
	}
	return out
}

// DefaultRoles are the components of a host that names no roles: every
// component but the opt-in ones, in reload order.
func DefaultRoles() []string {
	var out []string
	for _, c := range components {
		if !c.OptIn {
			out = append(out, c.Name)
		}
	}
	return out
}

// Lookup returns the named component.
func Lookup(name string) (Component, bool) {
	for _, c := range components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// Rank is a component's position in the reload order: built-in components
// by the table, then user templates ("template:NAME"), then anything else.
func Rank(component string) int {
	for i, c := range components {
		if c.Name == component {
			return i
		}
	}
	if strings.HasPrefix(component, "template:") || component == Firewall {
		return len(components)
	}
	return len(components) + 1
}

// Condition names a spec feature a file (or a component's default
// enablement) depends on. Render evaluates it.
type Condition string

const (
	Always     Condition = ""
	TURN       Condition = "turn"      // turn.enabled
	Recording  Condition = "recording" // meeting.recording.enabled
	FirewallOn Condition = "firewall"  // a firewall block with enabled = true
)

// Reload is what a change of the file does to its component's unit.
type Reload string

const (
	// ReloadUnit reloads the unit (restarts it when it cannot reload;
	// restart = "defer" postpones that for disruptive components).
	ReloadUnit Reload = "unit"
	// ReloadNone: the file is read on every request (config.js through
	// nginx SSI); nothing is reloaded.
	ReloadNone Reload = "none"
	// ReloadNft: the agent loads the file into the kernel (nft -f, one
	// transaction) after the swap, and restores the previous table on
	// rollback; no unit is involved.
	ReloadNft Reload = "nft"
)

// Secret names a secret a file carries. Render refuses to write the file
// when a needed secret is empty (secrets not loaded).
type Secret string

const (
	AppSecret  Secret = "auth.jwt app_secret" // needed only with JWT auth
	TURNSecret Secret = "TURN secret"         // needed only with TURN on
)

// Password is the secret of the built-in account named name ("focus
// password"); see Accounts.
func Password(name string) Secret { return Secret(name + " password") }

// AccountHost is the XMPP domain a built-in account lives on.
type AccountHost string

const (
	AuthDomain     AccountHost = "auth"     // auth.DOMAIN
	RecorderDomain AccountHost = "recorder" // meeting.recording.recorder_domain
)

// Account is one row of the accounts table: an XMPP account Prosody holds
// for a component to log in with. Everything else is derived from the row:
// its generated password (StateFile in the state directory's secrets/, or
// derived from cluster_secret with StateFile as the HKDF info), the
// spec's Secrets.Passwords entry, the templates' .Passwords entry, the
// table secret Password(Name), the account apply creates, and the
// component restarted when the password changes.
type Account struct {
	// Name is the user part of the JID ("focus" -> focus@auth.DOMAIN).
	Name string
	// Host is the domain part.
	Host AccountHost
	// Component logs in with it.
	Component string
	// When restricts the account to deployments with a feature on.
	When Condition
}

// StateFile is the account password's file name in the secrets directory.
func (a Account) StateFile() string { return a.Name + "_password" }

// Secret is the table secret the component's files carry.
func (a Account) Secret() Secret { return Password(a.Name) }

// accounts is the accounts table, in creation order.
var accounts = []Account{
	{Name: "focus", Host: AuthDomain, Component: Jicofo},
	{Name: "jvb", Host: AuthDomain, Component: JVB},
	// Jibri's control login (joins Jicofo's brewery) and its hidden
	// recorder participant (joins the meetings it records).
	{Name: "jibri", Host: AuthDomain, Component: Jibri, When: Recording},
	{Name: "recorder", Host: RecorderDomain, Component: Jibri, When: Recording},
}

// Accounts returns the accounts table.
func Accounts() []Account { return slices.Clone(accounts) }

// AccountOf returns the account whose password secret is s.
func AccountOf(s Secret) (Account, bool) {
	for _, a := range accounts {
		if a.Secret() == s {
			return a, true
		}
	}
	return Account{}, false
}

// Validator names a check run on the staged file before the swap
// (internal/apply); HOCON files are checked with Typesafe Config in tests.
type Validator string

const (
	Builtin    Validator = "built-in" // read back, mode, non-empty (every file)
	Luac       Validator = "luac -p"
	ProsodyCtl Validator = "prosodyctl check config"
	NginxT     Validator = "nginx -t"
	HOCON      Validator = "hocon"      // Typesafe Config (tests: internal/render realparsers)
	Properties Validator = "properties" // java.util.Properties (tests)
	JS         Validator = "js"         // node --check (tests)
	Turnserver Validator = "turnserver" // turnserver -c (tests)
	HAProxyC   Validator = "haproxy -c" // the front's whole configuration (internal/apply)
	// Nft: nft -c against the running kernel, run by the agent's firewall
	// step before any file is swapped (it needs CAP_NET_ADMIN, so it is not
	// one of internal/apply's checkers).
	Nft Validator = "nft -c"
)

// File is one row: a built-in rendered file.
type File struct {
	// Template is the built-in template's file name (templates/).
	Template string
	// Path is the destination; "{domain}" stands for the spec's domain.
	Path string
	// Link, when set, is a symlink pointing at Path with text LinkText
	// (Debian's conf.d and sites-enabled links).
	Link, LinkText string
	// Mode, Owner and Group of the written file.
	Mode         fs.FileMode
	Owner, Group string
	// Component owns the file: it is rendered on hosts with that role (every
	// host for Firewall), and a change reloads the component's unit as Reload
	// says.
	Component string
	Reload    Reload
	// When restricts the file to deployments with a feature on.
	When Condition
	// Sensitive files always hold a secret (their diffs are redacted).
	Sensitive bool
	// Secrets the file needs (see Secret).
	Secrets []Secret
	// WriteDirs are the paths the hardened daemon must be able to write to
	// replace this file atomically (systemd/jitsi-agent.service
	// ReadWritePaths): the top directory under /etc holding Path and Link.
	WriteDirs []string
	// Validators run on (or, for parsers only available in tests, are
	// proven against) the staged file. Apply runs exactly the Luac,
	// ProsodyCtl and NginxT listed here (render passes them on as
	// render.File.Validators); Nft is the firewall step's.
	Validators []Validator
}

// Table returns every built-in file in render order.
func Table() []File { return slices.Clone(table) }

var table = []File{
	{
		Template: "prosody.cfg.lua.tmpl", Component: Prosody, Reload: ReloadUnit,
		Path:     "/etc/prosody/conf.avail/{domain}.cfg.lua",
		Link:     "/etc/prosody/conf.d/{domain}.cfg.lua",
		LinkText: "../conf.avail/{domain}.cfg.lua",
		Mode:     0o640, Owner: "root", Group: "prosody", Sensitive: true,
		Secrets:    []Secret{AppSecret, TURNSecret},
		WriteDirs:  []string{"/etc/prosody"},
		Validators: []Validator{Builtin, Luac, ProsodyCtl},
	},
	{
		Template: "jicofo.conf.tmpl", Component: Jicofo, Reload: ReloadUnit,
		Path: "/etc/jitsi/jicofo/jicofo.conf",
		Mode: 0o640, Owner: "jicofo", Group: "jitsi", Sensitive: true,
		Secrets:    []Secret{Password("focus")},
		WriteDirs:  []string{"/etc/jitsi"},
		Validators: []Validator{Builtin, HOCON},
	},
	{
		Template: "jvb.conf.tmpl", Component: JVB, Reload: ReloadUnit,
		Path: "/etc/jitsi/videobridge/jvb.conf",
		Mode: 0o640, Owner: "jvb", Group: "jitsi", Sensitive: true,
		Secrets:    []Secret{Password("jvb")},
		WriteDirs:  []string{"/etc/jitsi"},
		Validators: []Validator{Builtin, HOCON},
	},
	{
		Template: "jvb-sip-communicator.properties.tmpl", Component: JVB, Reload: ReloadUnit,
		Path: "/etc/jitsi/videobridge/sip-communicator.properties",
		Mode: 0o640, Owner: "jvb", Group: "jitsi",
		WriteDirs:  []string{"/etc/jitsi"},
		Validators: []Validator{Builtin, Properties},
	},
	{
		// Jibri's control login joins Jicofo's brewery; its call login is
		// the hidden recorder participant.
		Template: "jibri.conf.tmpl", Component: Jibri, Reload: ReloadUnit, When: Recording,
		Path: "/etc/jitsi/jibri/jibri.conf",
		Mode: 0o640, Owner: "jibri", Group: "jitsi", Sensitive: true,
		Secrets:    []Secret{Password("jibri"), Password("recorder")},
		WriteDirs:  []string{"/etc/jitsi"},
		Validators: []Validator{Builtin, HOCON},
	},
	{
		// Served by nginx (with SSI) on every request: no reload.
		Template: "config.js.tmpl", Component: Nginx, Reload: ReloadNone,
		Path: "/etc/jitsi/meet/{domain}-config.js",
		Mode: 0o644, Owner: "root", Group: "root",
		WriteDirs:  []string{"/etc/jitsi"},
		Validators: []Validator{Builtin, JS},
	},
	{
		Template: "nginx-site.conf.tmpl", Component: Nginx, Reload: ReloadUnit,
		Path:     "/etc/nginx/sites-available/{domain}.conf",
		Link:     "/etc/nginx/sites-enabled/{domain}.conf",
		LinkText: "../sites-available/{domain}.conf",
		Mode:     0o644, Owner: "root", Group: "root",
		WriteDirs:  []string{"/etc/nginx"},
		Validators: []Validator{Builtin, NginxT},
	},
	{
		// coturn reads /etc/turnserver.conf; the file itself lives in
		// /etc/coturn so the hardened daemon (ProtectSystem=strict, /etc
		// read-only except its ReadWritePaths) can replace it atomically
		// through the link, as it does for conf.d and sites-enabled.
		Template: "turnserver.conf.tmpl", Component: Coturn, Reload: ReloadUnit, When: TURN,
		Path:     "/etc/coturn/turnserver.conf",
		Link:     "/etc/turnserver.conf",
		LinkText: "coturn/turnserver.conf",
		Mode:     0o640, Owner: "root", Group: "turnserver", Sensitive: true,
		Secrets:    []Secret{TURNSecret},
		WriteDirs:  []string{"/etc/coturn", "/etc/turnserver.conf"},
		Validators: []Validator{Builtin, Turnserver},
	},
	{
		// The front: HAProxy's whole configuration (the agent owns the
		// file Debian's haproxy.service reads). No secret: the certificate
		// is deployed beside it by internal/certs.
		Template: "haproxy.cfg.tmpl", Component: Front, Reload: ReloadUnit,
		Path: "/etc/haproxy/haproxy.cfg",
		Mode: 0o644, Owner: "root", Group: "root",
		WriteDirs:  []string{"/etc/haproxy"},
		Validators: []Validator{Builtin, HAProxyC},
	},
	{
		// The agent's own nftables table (internal/firewall renders the
		// rules; the template only places them). Host-wide: every host
		// whose spec has a firewall block.
		Template: "firewall.nft.tmpl", Component: Firewall, Reload: ReloadNft, When: FirewallOn,
		Path: FirewallPath,
		Mode: 0o600, Owner: "root", Group: "root",
		WriteDirs:  []string{"/etc/jitsi-agent/firewall"},
		Validators: []Validator{Builtin, Nft},
	},
}

// FrontCertDir holds the front's (HAProxy's) copy of the certificate:
// DOMAIN.pem (chain) and DOMAIN.pem.key (key, which HAProxy loads beside
// the chain by default), readable by the haproxy group.
const FrontCertDir = "/etc/haproxy/certs"

// FrontCert is the front's certificate chain for the domain.
func FrontCert(domain string) string { return FrontCertDir + "/" + domain + ".pem" }

// Expand replaces "{domain}" in a table path.
func Expand(p, domain string) string { return strings.ReplaceAll(p, "{domain}", domain) }

// Paths are every built-in destination and link for domain (user templates
// may not write over them).
func Paths(domain string) []string {
	var out []string
	for _, f := range table {
		out = append(out, Expand(f.Path, domain))
		if f.Link != "" {
			out = append(out, Expand(f.Link, domain))
		}
	}
	return out
}

// ReadWritePaths are the paths the hardened daemon must be able to write
// for the built-in files, sorted and deduplicated.
func ReadWritePaths() []string {
	var out []string
	for _, f := range table {
		for _, d := range f.WriteDirs {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Covered reports whether p (a path as under /) lies in one of the dirs.
func Covered(p string, dirs []string) bool {
	p = path.Clean(p)
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
