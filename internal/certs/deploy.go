package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Material is the certificate material to deploy, one Bundle per slot.
type Material struct {
	Bundles []*Bundle
	// Warnings are problems that did not stop Load (an unreadable cache
	// entry or deployed file that is therefore replaced).
	Warnings []string
}

// Lookup returns the bundle of a slot.
func (m *Material) Lookup(s Slot) *Bundle {
	for _, b := range m.Bundles {
		if b.Slot == s {
			return b
		}
	}
	return nil
}

// Load decides what to deploy for each slot of d. Paths are read under root
// ("" or "/" = the host). For each slot, in order:
//  1. the autocert cache entry (ACME only), unless a deployed real
//     certificate for the name is newer;
//  2. the certificate already deployed at the nginx path, if it is real (not
//     a placeholder): a real certificate is never replaced by a placeholder;
//  3. the deployed placeholder, if it still covers all names, has the right
//     key type and more than PlaceholderRefresh left (so repeated renders are
//     byte-identical and plan shows no change);
//  4. a new placeholder.
//
// Without ACME the deployed domain certificate is the user's: it is copied
// to Prosody and coturn, and nginx's files are left alone; only when it is
// missing is a placeholder written to the nginx paths.
func Load(d *spec.Deployment, root string, now time.Time) (*Material, error) {
	m := &Material{}
	names := Names(d)
	for _, s := range Slots(d) {
		b, err := loadSlot(d, root, s, names, now, m)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", s, err)
		}
		m.Bundles = append(m.Bundles, b)
	}
	return m, nil
}

func loadSlot(d *spec.Deployment, root string, s Slot, names []string, now time.Time, m *Material) (*Bundle, error) {
	p := PathsFor(d, s)
	deployed, derr := readDeployed(root, s, p)
	if d.TLS.ACME == nil {
		switch {
		case derr != nil:
			return nil, derr
		case deployed != nil && !deployed.Placeholder:
			deployed.Source = "user"
			return deployed, nil
		}
	} else if derr != nil {
		m.Warnings = append(m.Warnings, fmt.Sprintf("%s: deployed files unusable, replacing them: %v", s, derr))
		deployed = nil
	}
	if d.TLS.ACME != nil {
		cached, err := readCache(d, root, s)
		if err != nil {
			m.Warnings = append(m.Warnings, err.Error())
		}
		if cached != nil && (cached.Leaf.NotAfter.After(now) || deployed == nil || deployed.Placeholder ||
			!cached.Leaf.NotAfter.Before(deployed.Leaf.NotAfter)) {
			return cached, nil
		}
	}
	if deployed != nil && !deployed.Placeholder && deployed.Leaf.VerifyHostname(s.Name) == nil {
		return deployed, nil
	}
	if deployed != nil && deployed.Placeholder && coversNames(deployed.Leaf, names) &&
		keyTypeOf(deployed.Leaf) == s.Key && deployed.Leaf.NotAfter.Sub(now) > PlaceholderRefresh {
		deployed.Source = "placeholder"
		return deployed, nil
	}
	return NewPlaceholder(s, names, now)
}

// readDeployed reads the slot's nginx certificate and key. Missing files are
// (nil, nil); present but unusable ones are an error.
func readDeployed(root string, s Slot, p Paths) (*Bundle, error) {
	chain, err := input.ReadFile(rootJoin(root, p.NginxCert), input.MaxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.NginxCert, err)
	}
	key, err := input.ReadFile(rootJoin(root, p.NginxKey), input.MaxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s exists but its key %s does not", p.NginxCert, p.NginxKey)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.NginxKey, err)
	}
	b, _, _, err := parseBundle(s, chain, key)
	if err != nil {
		return nil, fmt.Errorf("%s / %s: %w", p.NginxCert, p.NginxKey, err)
	}
	b.Source = "deployed"
	return b, nil
}

// readCache reads the slot's autocert cache entry; a missing or unusable
// entry is nil (unusable entries also return an error to report).
func readCache(d *spec.Deployment, root string, s Slot) (*Bundle, error) {
	data, err := os.ReadFile(filepath.Join(CacheDir(d, root), s.CacheKey()))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read ACME cache: %w", err)
	}
	b, err := parseAutocertEntry(s, data)
	if err != nil {
		return nil, err
	}
	if b.Leaf.VerifyHostname(s.Name) != nil || keyTypeOf(b.Leaf) != s.Key {
		return nil, fmt.Errorf("ACME cache entry %s does not match %s", s.CacheKey(), s)
	}
	return b, nil
}

// Files returns the desired certificate files for m: PEM chain (leaf first)
// and key for each consumer of each slot. Owners and modes:
//
//	nginx   tls.certificate 0644 root:root, tls.key 0600 root:root (the master reads it as root)
//	Prosody /etc/prosody/certs/DOMAIN.crt 0644 root:prosody, .key 0640 root:prosody
//	coturn  /etc/coturn/certs/DOMAIN.fullchain.pem 0644 root:turnserver, .privkey.pem 0640 root:turnserver
//	front   /etc/haproxy/certs/DOMAIN.pem 0644 root:haproxy, DOMAIN.pem.key 0640 root:haproxy
//
// Each file names the unit to reload when it changes. Consumers the host
// does not run (roles, TURN disabled) get nothing. A user-supplied
// certificate (no ACME) is copied to Prosody and coturn but its nginx files
// are not managed.
func Files(d *spec.Deployment, m *Material) []render.File {
	var out []render.File
	pair := func(b *Bundle, component, certPath, keyPath, group string, certMode, keyMode fs.FileMode) {
		if certPath == "" || !runs(d, component) {
			return
		}
		units := []string{unitOf(d, component)}
		out = append(out,
			render.File{Path: certPath, Kind: render.KindFile, Content: b.ChainPEM, Mode: certMode,
				Owner: "root", Group: group, Component: component, Units: units},
			render.File{Path: keyPath, Kind: render.KindFile, Content: b.KeyPEM, Mode: keyMode,
				Owner: "root", Group: group, Component: component, Units: units, Sensitive: true})
	}
	for _, b := range m.Bundles {
		p := PathsFor(d, b.Slot)
		if b.Source != "user" {
			pair(b, spec.Nginx, p.NginxCert, p.NginxKey, "root", 0o644, 0o600)
		}
		pair(b, spec.Prosody, p.ProsodyCert, p.ProsodyKey, "prosody", 0o644, 0o640)
		if d.TURN.Enabled {
			pair(b, spec.Coturn, p.CoturnCert, p.CoturnKey, "turnserver", 0o644, 0o640)
		}
		pair(b, spec.Front, p.FrontCert, p.FrontKey, "haproxy", 0o644, 0o640)
	}
	return out
}

func runs(d *spec.Deployment, component string) bool { return d.Runs(component) }

func unitOf(d *spec.Deployment, component string) string {
	if s, ok := d.Services[component]; ok && s.Unit != "" {
		return s.Unit
	}
	return component + ".service"
}
