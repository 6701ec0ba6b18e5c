// Package certs obtains, deploys and renews the deployment's TLS certificates
// with ACME (golang.org/x/crypto/acme/autocert, HTTP-01 only), and writes a
// self-signed placeholder until a real certificate exists.
//
// The package has three parts:
//   - Manager (manager.go): the long-running ACME side. It serves HTTP-01
//     challenges on a loopback listener (nginx proxies
//     /.well-known/acme-challenge/ to it) and, on a fresh host, on :80 itself;
//     it obtains missing certificates with capped exponential backoff, arms
//     autocert's renewal timers, detects renewals through a Cache wrapper and
//     emits an Event for each new certificate. It records its status in a small
//     JSON state file.
//   - Load/Files (deploy.go): the pure-ish render side. Load reads the ACME
//     cache and the deployed files; Files turns that into render.File entries
//     (PEM chain and key for nginx, Prosody and coturn) that plan/apply push
//     like every other managed file.
//   - the placeholder (placeholder.go).
package certs

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// KeyType is the certificate key algorithm.
type KeyType string

// Key types. ECDSA (P-256) is always obtained; RSA (2048) only with acme.rsa.
const (
	ECDSA KeyType = "ecdsa"
	RSA   KeyType = "rsa"
)

// Defaults.
const (
	// LetsEncryptProduction is used when the spec names no directory.
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	// DefaultListen is the loopback challenge listener nginx proxies to.
	DefaultListen = "127.0.0.1:8402"
	// BootstrapAddr is where the agent serves HTTP-01 itself while nginx is
	// not running (fresh host).
	BootstrapAddr = ":80"
)

// Slot is one certificate the deployment needs: a name and a key type.
type Slot struct {
	Name string
	Key  KeyType
}

// CacheKey is the autocert cache key of the slot ("name" or "name+rsa").
func (s Slot) CacheKey() string {
	if s.Key == RSA {
		return s.Name + "+rsa"
	}
	return s.Name
}

func (s Slot) String() string { return s.Name + " (" + string(s.Key) + ")" }

// Names returns the deployment's certificate names: the domain first, then
// the ACME extra names, lower case, without duplicates. autocert issues one
// certificate per name.
func Names(d *spec.Deployment) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
	}
	add(d.Domain)
	if d.TLS.ACME != nil {
		for _, n := range d.TLS.ACME.ExtraNames {
			add(n)
		}
	}
	return out
}

// Slots lists every certificate the deployment needs, in a stable order.
// Without ACME there is one slot: the domain's (user-supplied or placeholder)
// certificate.
func Slots(d *spec.Deployment) []Slot {
	var out []Slot
	for _, n := range Names(d) {
		out = append(out, Slot{Name: n, Key: ECDSA})
		if d.TLS.ACME != nil && d.TLS.ACME.RSA {
			out = append(out, Slot{Name: n, Key: RSA})
		}
	}
	return out
}

// DirectoryURL is the ACME directory the deployment uses (the spec resolves
// the staging switch already).
func DirectoryURL(d *spec.Deployment) string {
	if d.TLS.ACME == nil || d.TLS.ACME.DirectoryURL == "" {
		return LetsEncryptProduction
	}
	return d.TLS.ACME.DirectoryURL
}

// ACMEDir is the directory under the state dir holding the caches and the
// state file: <root>/<state_dir>/acme.
func ACMEDir(d *spec.Deployment, root string) string {
	return filepath.Join(rootJoin(root, d.StateDir), "acme")
}

// CacheDir is the autocert cache of the deployment's directory URL. Cache
// keys do not include the CA, so each directory gets its own cache: a staging
// or test certificate is never served in production.
func CacheDir(d *spec.Deployment, root string) string {
	return filepath.Join(ACMEDir(d, root), DirHash(DirectoryURL(d)))
}

// DirHash is the first 12 hex digits of the SHA-256 of a directory URL.
func DirHash(directoryURL string) string {
	sum := sha256.Sum256([]byte(directoryURL))
	return hex.EncodeToString(sum[:])[:12]
}

// StatePath is the JSON state file the Manager writes and `jitsi-agent
// certs` reads.
func StatePath(d *spec.Deployment, root string) string {
	return filepath.Join(ACMEDir(d, root), "state.json")
}

// Consumer paths. nginx reads the spec's tls.certificate/tls.key (full chain,
// leaf first). Prosody and coturn get their own copies so their groups can
// read the key without opening the nginx key to them.
const (
	ProsodyCertDir = "/etc/prosody/certs"
	CoturnCertDir  = "/etc/coturn/certs"
)

// Paths are where one slot's certificate is deployed. Empty fields mean the
// slot is not deployed for that consumer.
type Paths struct {
	NginxCert, NginxKey     string
	ProsodyCert, ProsodyKey string
	CoturnCert, CoturnKey   string
	FrontCert, FrontKey     string
}

// PathsFor returns the deployment paths of a slot (as under "/"):
//   - the domain's ECDSA certificate: tls.certificate / tls.key for nginx,
//     /etc/prosody/certs/DOMAIN.{crt,key} for Prosody and
//     /etc/coturn/certs/DOMAIN.{fullchain,privkey}.pem for coturn,
//     /etc/haproxy/certs/DOMAIN.pem{,.key} for the front;
//   - the domain's RSA certificate: tls.certificate / tls.key with "-rsa"
//     before the extension (nginx only; nginx serves both key types with two
//     ssl_certificate lines);
//   - an extra name: NAME.crt / NAME.key (and NAME-rsa.*) in the directory of
//     tls.certificate / tls.key (nginx only).
func PathsFor(d *spec.Deployment, s Slot) Paths {
	certDir, keyDir := filepath.Dir(d.TLS.Certificate), filepath.Dir(d.TLS.Key)
	var p Paths
	if s.Name == d.Domain {
		p.NginxCert, p.NginxKey = d.TLS.Certificate, d.TLS.Key
	} else {
		p.NginxCert = filepath.Join(certDir, s.Name+".crt")
		p.NginxKey = filepath.Join(keyDir, s.Name+".key")
	}
	if s.Key == RSA {
		p.NginxCert, p.NginxKey = RSAPath(p.NginxCert), RSAPath(p.NginxKey)
		return p
	}
	if s.Name == d.Domain {
		p.ProsodyCert = filepath.Join(ProsodyCertDir, d.Domain+".crt")
		p.ProsodyKey = filepath.Join(ProsodyCertDir, d.Domain+".key")
		p.CoturnCert = filepath.Join(CoturnCertDir, d.Domain+".fullchain.pem")
		p.CoturnKey = filepath.Join(CoturnCertDir, d.Domain+".privkey.pem")
		p.FrontCert = files.FrontCert(d.Domain)
		p.FrontKey = p.FrontCert + ".key" // HAProxy loads the key beside the chain
	}
	return p
}

// RSAPath inserts "-rsa" before the extension: /a/b.crt -> /a/b-rsa.crt.
func RSAPath(p string) string {
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "-rsa" + ext
}

// rootJoin puts an absolute host path under root ("" or "/" = the host).
func rootJoin(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}
