package spec

import (
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
)

// Jitsi's apt repository, as Jitsi's quick-install guide configures it.
const (
	DefaultJitsiRepoURL   = "https://download.jitsi.org"
	DefaultJitsiRepoSuite = "stable/"
	DefaultJitsiKeyURL    = "https://download.jitsi.org/jitsi-key.gpg.key"
	// DefaultJitsiKeyFingerprint is the primary key of "Jitsi <dev@jitsi.org>"
	// (rsa4096, created 2016-06-23) that signs download.jitsi.org. Verify it
	// yourself before trusting it: `curl -fsSL https://download.jitsi.org/jitsi-key.gpg.key
	// | gpg --show-keys --with-fingerprint` must print these 40 hex digits
	// (and compare with what Jitsi's handbook and a second source say).
	DefaultJitsiKeyFingerprint = "66A9CD0595D6AFA247290D3BEF8B479E2DC1389C"
)

// Bootstrap is what 'jitsi-agent bootstrap' installs from (the bootstrap
// block): Jitsi's apt repository, optionally Prosody's.
type Bootstrap struct {
	JitsiRepo AptRepo
	// ProsodyRepo is nil unless the spec has a prosody_repo block.
	ProsodyRepo *AptRepo
}

// AptRepo is one signed apt repository.
type AptRepo struct {
	// Name is the file stem under /etc/apt: sources.list.d/NAME.list and
	// keyrings/NAME.gpg.
	Name string
	// URL is the repository's base URL (https, http or file).
	URL string
	// Suite is the distribution ("stable/" for Jitsi's flat repository).
	Suite string
	// Components ("main"); empty for a flat repository (suite ends in /).
	Components []string
	// KeyURL is where the signing key is fetched (https, http or file).
	KeyURL string
	// KeyFingerprint is the signing key's primary key fingerprint: 40 hex
	// digits, upper case. A fetched key with any other fingerprint (or with
	// more than one key) is refused.
	KeyFingerprint string
}

type rawBootstrap struct {
	JitsiRepo   *rawAptRepo `hcl:"jitsi_repo,block"`
	ProsodyRepo *rawAptRepo `hcl:"prosody_repo,block"`
	Body        hcl.Body    `hcl:",body"`
}

type rawAptRepo struct {
	URL            *string   `hcl:"url,optional"`
	Suite          *string   `hcl:"suite,optional"`
	Components     []string  `hcl:"components,optional"`
	KeyURL         *string   `hcl:"key_url,optional"`
	KeyFingerprint *string   `hcl:"key_fingerprint,optional"`
	Body           hcl.Body  `hcl:",body"`
	DefRange       hcl.Range `hcl:",def_range"`
}

var (
	fingerprintRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-F]{40}$`) })
	aptWordRe     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9.][A-Za-z0-9._/~+-]{0,63}$`) })
)

// resolveBootstrap reads the bootstrap block (every attribute has a
// default: Jitsi's stable repository and key).
func (r *resolver) resolveBootstrap(d *Deployment) {
	var raw rawBootstrap
	if r.raw.Bootstrap != nil {
		raw = *r.raw.Bootstrap
	}
	j := raw.JitsiRepo
	if j == nil {
		j = &rawAptRepo{}
	}
	d.Bootstrap.JitsiRepo = r.aptRepo(j, "jitsi", AptRepo{URL: DefaultJitsiRepoURL, Suite: DefaultJitsiRepoSuite,
		KeyURL: DefaultJitsiKeyURL, KeyFingerprint: DefaultJitsiKeyFingerprint})
	if p := raw.ProsodyRepo; p != nil {
		rng := p.DefRange
		if p.KeyFingerprint == nil {
			r.errf(&rng, "Prosody repository key not pinned", "prosody_repo needs key_fingerprint: the 40 hex digits of the key that signs it (gpg --show-keys --with-fingerprint KEYFILE); bootstrap refuses an unpinned key.")
		}
		repo := r.aptRepo(p, "prosody", AptRepo{URL: "https://packages.prosody.im/debian", KeyURL: "https://prosody.im/files/prosody-debian-packages.key",
			Components: []string{"main"}})
		if repo.Suite == "" {
			r.errf(&rng, "Prosody repository suite missing", `prosody_repo needs suite: your distribution's code name, e.g. suite = "bookworm" (Debian 12) or "noble" (Ubuntu 24.04).`)
		}
		d.Bootstrap.ProsodyRepo = &repo
	}
}

func (r *resolver) aptRepo(raw *rawAptRepo, name string, def AptRepo) AptRepo {
	repo := AptRepo{Name: name, URL: strOr(raw.URL, def.URL), Suite: strOr(raw.Suite, def.Suite),
		KeyURL: strOr(raw.KeyURL, def.KeyURL), Components: def.Components}
	if raw.Components != nil {
		repo.Components = raw.Components
	}
	for _, f := range []struct{ name, v string }{{"url", repo.URL}, {"key_url", repo.KeyURL}} {
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") || (u.Scheme == "file" && !strings.HasPrefix(u.Path, "/")) || strings.ContainsAny(f.v, " \t\n[]") {
			r.errf(at(raw.Body, f.name), "Invalid repository URL", "%s: %q is not an https://, http:// or file:/// URL without spaces.", f.name, f.v)
		}
	}
	if !aptWordRe().MatchString(repo.Suite) && repo.Suite != "" {
		r.errf(at(raw.Body, "suite"), "Invalid suite", "suite %q: one word such as \"stable/\" (flat repository) or \"bookworm\".", repo.Suite)
	}
	for _, c := range repo.Components {
		if !aptWordRe().MatchString(c) || strings.Contains(c, "/") {
			r.errf(at(raw.Body, "components"), "Invalid component", "component %q: one word such as \"main\".", c)
		}
	}
	if strings.HasSuffix(repo.Suite, "/") && len(repo.Components) > 0 {
		r.errf(at(raw.Body, "components"), "Flat repository with components", "suite %q ends in / (a flat repository), which takes no components; remove components or the trailing /.", repo.Suite)
	}
	fp := strings.ToUpper(strings.ReplaceAll(strOr(raw.KeyFingerprint, def.KeyFingerprint), " ", ""))
	if raw.KeyFingerprint != nil && !fingerprintRe().MatchString(fp) {
		r.errf(at(raw.Body, "key_fingerprint"), "Invalid key fingerprint", "key_fingerprint must be the key's 40 hex digits (spaces allowed), as `gpg --show-keys --with-fingerprint KEYFILE` prints them; short or long key IDs are not enough.")
	}
	repo.KeyFingerprint = fp
	return repo
}
