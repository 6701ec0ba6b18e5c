package prosody

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// A running Prosody (0.12) does not take every config change the same way.
// `prosodyctl reload` / SIGHUP re-reads the file and fires config-reloaded,
// which refreshes certificates and a few modules (tls), but:
//   - a VirtualHost or Component added to the file is not served until
//     host:activate(); a removed one keeps running until host:deactivate();
//   - a module added to or removed from modules_enabled is not loaded or
//     unloaded (module:load / module:unload);
//   - most modules read their settings once, when they load: mod_auth_token
//     and mod_token_verification build their verifier (app_secret, issuers,
//     audiences...) at load, mod_muc_max_occupants reads the limit at load,
//     mod_external_services its services and secret; they need
//     module:reload(name, host);
//   - plugin_paths, ports, the MUC core settings and the authentication
//     provider are read at start (or at host activation): only a restart,
//     which ends every session, takes them. A restart follows the prosody
//     service's restart policy and is shown by plan.
//
// Classify decides this from a structural comparison of the old and new
// rendered config (hosts, their types, settings and modules, never text).

// Host is one VirtualHost or Component of a config.
type Host struct {
	Name string
	// Component is the component type ("muc", "client_proxy", ...); ""
	// for a VirtualHost.
	Component string
	// Modules are the modules the host's config loads: modules_enabled,
	// the authentication provider (auth_NAME) and the component module.
	Modules []string
	// Settings maps every other option to its canonical value.
	Settings map[string]string
}

// Model is the structure of a Prosody config file.
type Model struct {
	Global map[string]string
	Hosts  map[string]*Host
	// Names lists the hosts in file order.
	Names []string
}

// ModelOf builds the structural model of a config file.
func ModelOf(src []byte) (*Model, error) {
	cfg, err := ParseConfig(src)
	if err != nil {
		return nil, err
	}
	m := &Model{Global: map[string]string{}, Hosts: map[string]*Host{}}
	for k, v := range cfg.Global {
		m.Global[k] = v.Canon
	}
	for _, s := range cfg.Sections {
		if s.Host == "" {
			continue
		}
		h := &Host{Name: s.Host, Component: s.Type, Settings: map[string]string{}}
		if s.Kind == "Component" && h.Component == "" {
			h.Component = "component" // external component (no module)
		}
		for k, v := range s.Options {
			switch k {
			case "modules_enabled":
				h.Modules = append(h.Modules, v.List...)
			default:
				h.Settings[k] = v.Canon
			}
		}
		if a, ok := s.Options["authentication"]; ok && a.Kind == LuaString {
			h.Modules = append(h.Modules, "auth_"+a.Str)
		}
		if h.Component != "" && h.Component != "component" {
			h.Modules = append(h.Modules, h.Component)
		}
		slices.Sort(h.Modules)
		h.Modules = slices.Compact(h.Modules)
		if _, dup := m.Hosts[h.Name]; !dup {
			m.Names = append(m.Names, h.Name)
		}
		m.Hosts[h.Name] = h
	}
	return m, nil
}

// ActionKind is what one step does to the running Prosody.
type ActionKind string

// Action kinds, in the order Sync runs them.
const (
	ActConfigReload ActionKind = "config-reload" // re-read the files (config:reload())
	ActDeactivate   ActionKind = "deactivate"    // host:deactivate(host): its sessions end
	ActActivate     ActionKind = "activate"      // host:activate(host)
	ActUnload       ActionKind = "module-unload" // module:unload(name, host)
	ActLoad         ActionKind = "module-load"   // module:load(name, host)
	ActReload       ActionKind = "module-reload" // module:reload(name, host)
	ActRestart      ActionKind = "restart"       // systemctl restart prosody: every session ends
)

// Action is one step.
type Action struct {
	Kind   ActionKind `json:"kind"`
	Host   string     `json:"host,omitempty"`
	Module string     `json:"module,omitempty"`
	// Why names the change that needs it.
	Why string `json:"why"`
}

func (a Action) String() string {
	s := string(a.Kind)
	if a.Module != "" {
		s += " " + a.Module
	}
	if a.Host != "" {
		s += " on " + a.Host
	}
	return s + " (" + a.Why + ")"
}

// Disruptive reports whether the action ends sessions.
func (a Action) Disruptive() bool { return a.Kind == ActRestart || a.Kind == ActDeactivate }

// Plan is what a config change needs.
type Plan struct {
	Actions []Action `json:"actions"`
}

// Restart reports whether the plan needs a restart, and why.
func (p Plan) Restart() (bool, []string) {
	var why []string
	for _, a := range p.Actions {
		if a.Kind == ActRestart {
			why = append(why, a.Why)
		}
	}
	return len(why) > 0, why
}

// Empty reports whether nothing needs doing.
func (p Plan) Empty() bool { return len(p.Actions) == 0 }

// Summary is one line per action.
func (p Plan) Summary() []string {
	out := make([]string, 0, len(p.Actions))
	for _, a := range p.Actions {
		out = append(out, a.String())
	}
	return out
}

// rule says what a changed setting needs.
type rule struct {
	// reload: modules reloaded on the host where the setting changed
	// (for a global setting: on every host that loads them).
	reload []string
	// everywhere: modules reloaded on every host that loads them (a
	// module that reads another host's settings, e.g. token_verification
	// reads the VirtualHost's app_secret through its parent context).
	everywhere []string
	// self: reload the component's own module.
	self bool
	// configOnly: the config reload is enough (a config-reloaded hook
	// or a read at use).
	configOnly bool
	// restart: only a restart takes it (why).
	restart string
}

// tokenRule: mod_auth_token and mod_token_verification build their
// verifier (token/util.lib.lua new()) from these when they load.
var tokenSettings = []string{"app_id", "app_secret", "signature_algorithm", "asap_accepted_issuers",
	"asap_accepted_audiences", "asap_require_room_claim", "enable_domain_verification", "allow_empty_token",
	"asap_key_server", "cache_keys_url"}

// hostRules are per-host settings (found by reading the modules in
// jitsi-meet's resources/prosody-plugins and Prosody 0.12's own).
func hostRule(setting string) (rule, bool) {
	if slices.Contains(tokenSettings, setting) {
		return rule{reload: []string{"auth_token"}, everywhere: []string{"token_verification"}}, true
	}
	switch setting {
	case "ssl":
		return rule{configOnly: true}, true // certmanager and portmanager reload certificates on config-reloaded
	case "c2s_require_encryption":
		return rule{reload: []string{"tls", "saslauth"}}, true
	case "main_muc", "lobby_muc", "breakout_rooms_muc", "muc_lobby_whitelist":
		return rule{reload: []string{"muc_lobby_rooms", "persistent_lobby", "muc_breakout_rooms", "muc_wait_for_host"}}, true
	case "muc_max_occupants", "muc_access_whitelist":
		return rule{reload: []string{"muc_max_occupants"}}, true
	case "muc_password_whitelist":
		return rule{reload: []string{"muc_password_whitelist"}}, true
	case "token_verification_allowlist", "token_verification_require_token_for_moderation":
		return rule{reload: []string{"token_verification"}}, true
	case "wait_for_host_disable_auto_owners":
		return rule{reload: []string{"muc_wait_for_host"}}, true
	case "smacks_hibernation_time", "smacks_max_old_sessions", "smacks_max_unacked_stanzas":
		return rule{reload: []string{"smacks"}}, true
	case "muc_component", "breakout_rooms_component", "target_address":
		return rule{self: true}, true
	case "unlimited_jids":
		return rule{reload: []string{"limits_exception"}}, true
	case "authentication":
		return rule{restart: "the authentication provider is bound when the host starts"}, true
	case "restrict_room_creation", "storage", "muc_room_locking", "muc_room_default_public_jids", "admins":
		return rule{restart: "MUC core setting " + setting + " is read when the MUC loads"}, true
	}
	return rule{}, false
}

func globalRule(setting string) (rule, bool) {
	switch setting {
	case "ssl":
		return rule{configOnly: true}, true
	case "external_services", "external_service_secret", "external_service_host", "external_service_port", "external_service_ttl":
		return rule{reload: []string{"external_services"}}, true
	case "unlimited_jids":
		return rule{reload: []string{"limits_exception"}}, true
	case "smacks_hibernation_time", "smacks_max_old_sessions", "smacks_max_unacked_stanzas":
		return rule{reload: []string{"smacks"}}, true
	case "plugin_paths":
		return rule{restart: "plugin_paths is read when Prosody starts"}, true
	}
	if h, ok := hostRule(setting); ok && h.restart == "" {
		// A host setting given globally reaches every host.
		return h, true
	}
	return rule{}, false
}

// Classify compares the old and new config (old nil: nothing of ours was
// deployed) and returns what the running Prosody needs. Hosts are taken
// from the file; Sync also checks them against the live server.
func Classify(old, new *Model) Plan {
	if old == nil {
		old = &Model{Global: map[string]string{}, Hosts: map[string]*Host{}}
	}
	var acts []Action
	add := func(a Action) {
		for _, b := range acts {
			if b.Kind == a.Kind && b.Host == a.Host && b.Module == a.Module && (a.Kind != ActRestart || b.Why == a.Why) {
				return
			}
		}
		acts = append(acts, a)
	}
	// modules loaded per host in the new config, for "everywhere" rules
	loads := func(module string) []string {
		var hs []string
		for _, n := range new.Names {
			if slices.Contains(new.Hosts[n].Modules, module) {
				hs = append(hs, n)
			}
		}
		return hs
	}
	apply := func(r rule, where, setting string) {
		why := setting + " changed"
		if where != "" {
			why = setting + " changed on " + where
		}
		if r.restart != "" {
			add(Action{Kind: ActRestart, Why: why + ": " + r.restart})
			return
		}
		if r.configOnly {
			return
		}
		for _, m := range r.reload {
			if where == "" {
				for _, h := range loads(m) {
					add(Action{Kind: ActReload, Host: h, Module: m, Why: why + " (read when the module loads)"})
				}
			} else if h := new.Hosts[where]; h != nil && slices.Contains(h.Modules, m) {
				add(Action{Kind: ActReload, Host: where, Module: m, Why: why + " (read when the module loads)"})
			}
		}
		for _, m := range r.everywhere {
			for _, h := range loads(m) {
				add(Action{Kind: ActReload, Host: h, Module: m, Why: why + " (read when the module loads)"})
			}
		}
		if r.self && where != "" {
			if h := new.Hosts[where]; h != nil && h.Component != "" && h.Component != "component" {
				add(Action{Kind: ActReload, Host: where, Module: h.Component, Why: why + " (read when the component loads)"})
			}
		}
	}

	for _, k := range changedKeys(old.Global, new.Global) {
		if k == "modules_enabled" || k == "modules_disabled" {
			add(Action{Kind: ActRestart, Why: "global " + k + " changed"})
			continue
		}
		r, ok := globalRule(k)
		if !ok {
			r = rule{restart: "no known way to apply it live"}
		}
		apply(r, "", "global "+k)
	}

	for _, n := range old.Names {
		if _, ok := new.Hosts[n]; !ok {
			add(Action{Kind: ActDeactivate, Host: n, Why: "removed from the config"})
		}
	}
	for _, n := range new.Names {
		nh := new.Hosts[n]
		oh, ok := old.Hosts[n]
		if !ok {
			add(Action{Kind: ActActivate, Host: n, Why: "added to the config"})
			continue
		}
		if oh.Component != nh.Component {
			add(Action{Kind: ActDeactivate, Host: n, Why: fmt.Sprintf("type changed from %q to %q", oh.Component, nh.Component)})
			add(Action{Kind: ActActivate, Host: n, Why: fmt.Sprintf("type changed from %q to %q", oh.Component, nh.Component)})
			continue
		}
		for _, m := range oh.Modules {
			if !slices.Contains(nh.Modules, m) {
				if strings.HasPrefix(m, "auth_") {
					continue // covered by the authentication rule
				}
				add(Action{Kind: ActUnload, Host: n, Module: m, Why: "removed from modules_enabled"})
			}
		}
		for _, m := range nh.Modules {
			if !slices.Contains(oh.Modules, m) {
				if strings.HasPrefix(m, "auth_") {
					continue
				}
				add(Action{Kind: ActLoad, Host: n, Module: m, Why: "added to modules_enabled"})
			}
		}
		for _, k := range changedKeys(oh.Settings, nh.Settings) {
			r, ok := hostRule(k)
			if !ok {
				r = rule{restart: "no known way to apply it live"}
			}
			apply(r, n, k)
		}
	}
	if len(acts) == 0 {
		return Plan{}
	}
	acts = append([]Action{{Kind: ActConfigReload, Why: "the config file changed"}}, acts...)
	// A restart makes every other step moot.
	for _, a := range acts {
		if a.Kind == ActRestart {
			var keep []Action
			for _, b := range acts {
				if b.Kind == ActRestart {
					keep = append(keep, b)
				}
			}
			return Plan{Actions: keep}
		}
	}
	order := map[ActionKind]int{ActConfigReload: 0, ActDeactivate: 1, ActActivate: 2, ActUnload: 3, ActLoad: 4, ActReload: 5}
	sort.SliceStable(acts, func(i, j int) bool { return order[acts[i].Kind] < order[acts[j].Kind] })
	return Plan{Actions: acts}
}

// changedKeys lists keys whose values differ (added, removed or changed), sorted.
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
