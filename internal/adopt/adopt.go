// Package adopt takes over an existing Jitsi host: it reads the
// configuration the Debian quick install (and later hand edits) left under
// a root directory, in each file's real grammar (Prosody's Lua evaluated in
// a sandbox, config.js evaluated as JavaScript, HOCON, nginx, coturn and
// Java properties), and produces the spec that renders the same settings,
// the internal secrets to keep (so nothing rotates on the first apply), and
// a report of every setting the spec cannot express, with file and line:
// those are kept verbatim in the spec's extra block, or listed as the
// changes apply will make, with the reason.
//
// Import only reads; Write stores the spec, the app secret file and the
// state-dir secrets.
package adopt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/secrets"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// Options for Import.
type Options struct {
	// Root is the directory the host's / is under ("/" for this machine).
	Root string
	// Domain chooses the domain when the host configures several ("" =
	// the only one).
	Domain string
	// Out is the spec path to write (its directory holds the app secret
	// file); it need not exist.
	Out string
	// Now is the time certificates are judged at (zero: time.Now).
	Now time.Time
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// Result is an import: the spec text, the secrets, the report.
type Result struct {
	Domain string
	// Spec is the formatted spec.
	Spec []byte
	// Deployment is the spec as loaded (secrets filled in).
	Deployment *spec.Deployment
	// AppSecret is the JWT app secret ("" without JWT); AppSecretFile the
	// path it is written to (next to the spec).
	AppSecret     string
	AppSecretFile string
	// Internal secrets found on the host, for the state directory.
	Secrets spec.Secrets
	// SecretsWritten says where each secret came from and goes (filled
	// by Write; before that, the plan).
	SecretsWritten []SecretMove
	// Sources are the files read.
	Sources []string
	// Findings is the report: every setting kept in extra, changed, added
	// or removed, with file and line.
	Findings []Finding
	// Rendered is what the spec renders (without TLS material).
	Rendered *render.Set

	stateSecrets string // secrets dir under root
	hostName     string
}

// SecretMove records where a secret came from and where it is stored.
type SecretMove struct {
	Name string
	From string // file:line on the host
	To   string
}

// Import reads the host under opts.Root and builds the spec. It writes
// nothing.
func Import(opts Options) (*Result, error) {
	if opts.Root == "" {
		return nil, errors.New("no root directory given (use / for this machine)")
	}
	if opts.Out == "" {
		return nil, errors.New("no output spec path given (--out SPEC)")
	}
	outAbs, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("--out %s: %w", opts.Out, err)
	}
	h, err := readHost(opts.Root, opts.Domain)
	if err != nil {
		return nil, err
	}
	im, err := derive(h)
	if err != nil {
		return nil, err
	}
	tidy(im)
	if n := len(im.appSecret); n > 0 && n < spec.MinAppSecretLength {
		vh := h.prosody.section(h.domain)
		return nil, fmt.Errorf("%s: app_secret has %d characters; jitsi-agent requires at least %d (a short HMAC secret can be brute-forced from any token). Generate one (openssl rand -hex 32), set it in the app's backend and in this file, then run import again", at(h.prosody.File, vh.Opts["app_secret"].Line), n, spec.MinAppSecretLength)
	}
	deriveFirewall(h, im)

	secretName := strings.TrimSuffix(filepath.Base(outAbs), filepath.Ext(outAbs)) + ".app_secret"
	res := &Result{Domain: h.domain, Sources: h.files(), AppSecret: im.appSecret, hostName: im.hostName}
	if im.appSecret != "" {
		res.AppSecretFile = filepath.Join(filepath.Dir(outAbs), secretName)
	}
	res.Secrets = spec.Secrets{TURNSecret: spec.NewSecret(im.turnSecret.value)}
	res.stateSecrets = secrets.Dir(filepath.Join(opts.Root, spec.DefaultStateDir))
	found := []struct {
		name string
		f    secretFound
	}{{secrets.TURNSecret, im.turnSecret}}
	for _, a := range files.Accounts() {
		f := im.passwords[a.Name]
		res.Secrets.SetPassword(a.Name, spec.NewSecret(f.value))
		found = append(found, struct {
			name string
			f    secretFound
		}{a.StateFile(), f})
	}
	for _, s := range found {
		if s.f.value != "" {
			res.SecretsWritten = append(res.SecretsWritten, SecretMove{Name: s.name, From: s.f.where, To: filepath.Join(res.stateSecrets, s.name)})
		}
	}

	// Pass 1: the spec without extras; everything the host has beyond it
	// becomes extra text.
	src := writeSpec(im, res.Sources, secretName, spec.Extra{})
	d, set, err := loadAndRender(outAbs, src, res)
	if err != nil {
		return nil, fmt.Errorf("the host's configuration cannot be expressed as a valid spec: %w", err)
	}
	kept, extra, err := compareHost(h, set, d, true)
	if err != nil {
		return nil, err
	}
	refineFirewall(im, d)
	// Pass 2: with the extras; what still differs is what apply changes.
	src = writeSpec(im, res.Sources, secretName, extra)
	d, set, err = loadAndRender(outAbs, src, res)
	if err != nil {
		return nil, fmt.Errorf("the imported spec with extra settings does not load: %w", err)
	}
	rest, _, err := compareHost(h, set, d, false)
	if err != nil {
		return nil, err
	}
	var findings []Finding
	for _, f := range kept {
		if f.Kind == KindKept {
			findings = append(findings, f)
		}
	}
	for _, f := range rest {
		if f.Kind != KindKept {
			findings = append(findings, f)
		}
	}
	findings = append(findings, im.notes...)
	findings = append(findings, fileFindings(h, set)...)
	support, err := supportFindings(h, d, set, opts.now())
	if err != nil {
		return nil, err
	}
	findings = append(findings, support...)
	sortFindings(findings)

	formatted, diags := spec.Format(outAbs, src)
	if diags.HasErrors() {
		return nil, fmt.Errorf("formatting the imported spec: %s", diags.Error())
	}
	res.Spec = formatted
	res.Deployment = d
	res.Findings = findings
	res.Rendered = set
	return res, nil
}

// tidy removes list entries the templates add by themselves.
func tidy(im *imported) {
	d := im.d
	rec := &d.Meeting.Recording
	if rec.Enabled {
		rec.Whitelist = without(rec.Whitelist, rec.RecorderDomain)
		rec.TrustedDomains = without(rec.TrustedDomains, rec.RecorderDomain)
	}
	rec.Whitelist = without(rec.Whitelist, d.GuestDomain())
	rec.Whitelist = without(rec.Whitelist, d.FocusJID())
}

func loadAndRender(outAbs string, src []byte, res *Result) (*spec.Deployment, *render.Set, error) {
	secretPath := res.AppSecretFile
	lr := spec.Load(outAbs, spec.Options{
		Host: res.hostName,
		ReadFile: func(p string) ([]byte, error) {
			if p == outAbs {
				return src, nil
			}
			if secretPath != "" && p == secretPath {
				return []byte(res.AppSecret + "\n"), nil
			}
			return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
		},
		LookupEnv: func(string) (string, bool) { return "", false },
		Hostname:  func() (string, error) { return "imported-host", nil },
	})
	if lr.HasErrors() {
		var b bytes.Buffer
		for _, dg := range lr.Diags {
			if dg.Severity == hcl.DiagError {
				fmt.Fprintf(&b, "%s: %s; ", dg.Summary, dg.Detail)
			}
		}
		return nil, nil, errors.New(strings.TrimSpace(b.String()))
	}
	d := lr.Deployment
	// A secret the host lacks (a component not installed here) renders
	// with a placeholder; apply generates the real one.
	d.Secrets = res.Secrets.Filled(func() spec.Secret { return spec.NewSecret("(generated-on-first-apply)") })
	set, err := render.Render(render.Input{Deployment: d, Templates: templates.Overlay(""), UserSources: map[string][]byte{}})
	if err != nil {
		return nil, nil, err
	}
	return d, set, nil
}

func renderedFile(set *render.Set, p string) *render.File {
	for i := range set.Files {
		if set.Files[i].Path == p {
			return &set.Files[i]
		}
	}
	return nil
}

// compareHost compares every host file with its rendered counterpart.
func compareHost(h *hostFiles, set *render.Set, d *spec.Deployment, keep bool) ([]Finding, spec.Extra, error) {
	var fs []Finding
	var ex spec.Extra
	add := func(f []Finding) { fs = append(fs, f...) }
	missing := func(p string) {
		fs = append(fs, Finding{File: p, Kind: KindRemoved, Setting: "(the whole file)", Reason: "the spec renders no such file for this host"})
	}
	if h.prosody != nil {
		if rf := renderedFile(set, prosodyPath(h.domain)); rf == nil {
			missing(h.prosody.File)
		} else {
			out, err := parseProsody(rf.Path+" (rendered)", rf.Content)
			if err != nil {
				return nil, ex, err
			}
			f, e, mods := compareProsody(h.prosody.File, h.prosody, out, keep)
			add(f)
			ex.Prosody, ex.ProsodyModules = e, mods
		}
	}
	for _, c := range []struct {
		doc  *hoconDoc
		path string
		dst  *string
	}{{h.jicofo, pathJicofo, &ex.Jicofo}, {h.jvb, pathJVB, &ex.JVB}, {h.jibri, pathJibri, &ex.Jibri}} {
		if c.doc == nil {
			continue
		}
		rf := renderedFile(set, c.path)
		if rf == nil {
			missing(c.path)
			continue
		}
		out, err := parseHOCON(rf.Path+" (rendered)", rf.Content)
		if err != nil {
			return nil, ex, err
		}
		f, e := compareHOCON(c.path, c.doc, out)
		add(f)
		*c.dst = e
	}
	if h.jvbLegacy != nil {
		if rf := renderedFile(set, pathJVBLegacy); rf != nil {
			out, err := parseProperties(rf.Path, rf.Content)
			if err != nil {
				return nil, ex, err
			}
			var rest lineFile
			rest.File = h.jvbLegacy.File
			for _, e := range h.jvbLegacy.Entries {
				if legacyUnderstood(e.Key) {
					fs = append(fs, Finding{File: pathJVBLegacy, Line: e.Line, Kind: KindRemoved, Setting: e.Key, Old: mask(e.Key, e.Value),
						Reason: "moved to jvb.conf (legacy keys would take precedence over it)"})
					continue
				}
				rest.Entries = append(rest.Entries, e)
			}
			f, e := compareLines(pathJVBLegacy, &rest, out, nil, func(e lineEntry) string { return e.Key })
			add(f)
			ex.SipCommunicator = e
		}
	}
	if h.configJS != nil {
		if rf := renderedFile(set, configJSPath(h.domain)); rf == nil {
			missing(h.configJS.File)
		} else {
			out, err := parseConfigJS(rf.Path+" (rendered)", rf.Content)
			if err != nil {
				return nil, ex, err
			}
			f, e := compareConfigJS(h.configJS.File, h.configJS, out)
			add(f)
			ex.ConfigJS = e
		}
	}
	if h.nginx != nil {
		if rf := renderedFile(set, nginxPath(h.domain)); rf == nil {
			missing(h.nginx.File)
		} else {
			out, err := parseNginx(rf.Path+" (rendered)", rf.Content)
			if err != nil {
				return nil, ex, err
			}
			f, eh, es := compareNginx(h.nginx.File, h.nginx, out)
			add(f)
			ex.Nginx, ex.NginxServer = eh, es
		}
	}
	if h.turn != nil {
		if rf := renderedFile(set, pathTURNAgent); rf == nil {
			missing(h.turn.File)
		} else {
			out, err := parseCoturn(rf.Path, rf.Content)
			if err != nil {
				return nil, ex, err
			}
			f, e := compareLines(h.turnPath, h.turn, out, coturnObsolete, coturnKey)
			add(f)
			ex.Coturn = e
		}
	}
	for _, l := range []*lineFile{h.jicofoLegacy, h.jicofoShell} {
		if l != nil {
			fs = append(fs, Finding{File: l.File, Kind: KindIgnored, Setting: "(the whole file)", Reason: "not managed by jitsi-agent; the credentials were imported, the file is left as it is"})
		}
	}
	if !keep {
		ex = spec.Extra{}
	}
	return fs, ex, nil
}

// fileOwner returns the user and group names of a file ("" if unknown).
func fileOwner(st fs.FileInfo) (string, string) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", ""
	}
	u, g := strconv.Itoa(int(sys.Uid)), strconv.Itoa(int(sys.Gid))
	if uu, err := user.LookupId(u); err == nil {
		u = uu.Username
	}
	if gg, err := user.LookupGroupId(g); err == nil {
		g = gg.Name
	}
	return u, g
}

func legacyUnderstood(k string) bool {
	return strings.HasPrefix(k, "org.jitsi.videobridge.xmpp.user.") ||
		k == "org.ice4j.ice.harvest.NAT_HARVESTER_LOCAL_ADDRESS" || k == "org.ice4j.ice.harvest.NAT_HARVESTER_PUBLIC_ADDRESS" ||
		k == "org.ice4j.ice.harvest.STUN_MAPPING_HARVESTER_ADDRESSES"
}

// supportFindings reports the files apply writes besides the configuration
// files: certificates for nginx, Prosody and coturn, the internal
// certificates of Prosody's other hosts, Lua links. They are what plan shows
// beyond the configuration, so the report names them.
func supportFindings(h *hostFiles, d *spec.Deployment, cfg *render.Set, now time.Time) ([]Finding, error) {
	full, err := agent.Render(d, h.root, now)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, f := range full.Files {
		if renderedFile(cfg, f.Path) != nil {
			continue
		}
		reason := "a file jitsi-agent maintains for the services"
		if strings.Contains(f.Path, "/certs/") || strings.HasSuffix(f.Path, ".crt") || strings.HasSuffix(f.Path, ".key") || strings.HasSuffix(f.Path, ".pem") {
			reason = "TLS material: jitsi-agent deploys each service's certificate (the deployed one when it is valid, else a placeholder until ACME or an internal CA issues one)"
		}
		p := filepath.Join(h.root, f.Path)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, Finding{File: f.Path, Kind: KindAdded, Setting: "(the whole file)", Reason: reason})
		case err != nil:
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		case f.Kind == render.KindSymlink:
			if t, _ := os.Readlink(p); st.Mode()&fs.ModeSymlink == 0 || t != f.Target {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "symlink -> " + f.Target, Reason: reason})
			}
		default:
			b, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(b, f.Content) || st.Mode()&fs.ModeSymlink != 0 {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "(contents)", Reason: reason})
			} else if st.Mode().Perm() != f.Mode {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "mode", Old: fmt.Sprintf("%04o", st.Mode().Perm()), New: fmt.Sprintf("%04o", f.Mode), Reason: reason})
			}
		}
	}
	return out, nil
}

// fileFindings reports file-level changes: modes, owners and links.
func fileFindings(h *hostFiles, set *render.Set) []Finding {
	var out []Finding
	for _, f := range set.Files {
		full := filepath.Join(h.root, f.Path)
		st, err := os.Lstat(full)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if f.Kind == render.KindSymlink {
				out = append(out, Finding{File: f.Path, Kind: KindAdded, Setting: "symlink -> " + f.Target, Reason: "Debian's enabled-link layout"})
			} else if f.Path == pathTURNAgent && h.turn != nil {
				out = append(out, Finding{File: f.Path, Kind: KindAdded, Setting: "(the whole file)",
					Reason: "coturn's configuration moves here and " + pathTURN + " becomes a link to it; its settings are compared under " + h.turnPath})
			} else if _, read := h.raw[f.Path]; !read {
				out = append(out, Finding{File: f.Path, Kind: KindAdded, Setting: "(the whole file)", Reason: "rendered from the spec"})
			}
		case err != nil:
		case f.Kind == render.KindSymlink:
			if st.Mode()&fs.ModeSymlink == 0 {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "file type", Old: "regular file", New: "symlink -> " + f.Target,
					Reason: "jitsi-agent keeps the file in its own directory and links to it so it can be replaced atomically"})
			} else if t, _ := os.Readlink(full); t != f.Target && filepath.Clean(filepath.Join(filepath.Dir(f.Path), t)) != filepath.Clean(filepath.Join(filepath.Dir(f.Path), f.Target)) {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "symlink target", Old: t, New: f.Target, Reason: "relative link"})
			}
		default:
			if o, g := fileOwner(st); o != "" && (f.Owner != "" && o != f.Owner || f.Group != "" && g != f.Group) {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "owner", Old: o + ":" + g, New: f.Owner + ":" + f.Group,
					Reason: "the service's user reads it (applied when that user exists)"})
			}
			if st.Mode().Perm() != f.Mode {
				out = append(out, Finding{File: f.Path, Kind: KindChanged, Setting: "mode", Old: fmt.Sprintf("%04o", st.Mode().Perm()), New: fmt.Sprintf("%04o", f.Mode),
					Reason: "the file holds secrets or is read by one service only"})
			}
		}
	}
	return out
}

// Write stores the import: the spec at out (refusing to replace an
// existing file unless force), the app secret file (0600) next to it, and
// the internal secrets in the state directory under root (0700/0600). A
// secret already stored with a different value is an error unless force:
// replacing it would lock the running services out.
func (r *Result) Write(out string, force bool) error {
	if _, err := os.Lstat(out); err == nil && !force {
		return fmt.Errorf("%s exists; choose another --out or pass --force to replace it", out)
	}
	if r.AppSecretFile != "" {
		if b, err := os.ReadFile(r.AppSecretFile); err == nil && strings.TrimSpace(string(b)) != r.AppSecret && !force {
			return fmt.Errorf("%s exists with a different secret; remove it or pass --force", r.AppSecretFile)
		}
	}
	for _, s := range r.SecretsWritten {
		b, err := os.ReadFile(s.To)
		if err == nil && strings.TrimSpace(string(b)) != r.secretValue(s.Name) && !force {
			return fmt.Errorf("%s already holds a different %s; the running services may use it. Remove it or pass --force to replace it with the host's value from %s", s.To, s.Name, s.From)
		}
	}
	if r.AppSecretFile != "" {
		if err := fsys.WriteAtomic(r.AppSecretFile, []byte(r.AppSecret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write app secret: %w", err)
		}
	}
	if len(r.SecretsWritten) > 0 {
		if err := os.MkdirAll(r.stateSecrets, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", r.stateSecrets, err)
		}
		if err := os.Chmod(r.stateSecrets, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", r.stateSecrets, err)
		}
		for _, s := range r.SecretsWritten {
			if err := fsys.WriteAtomic(s.To, []byte(r.secretValue(s.Name)+"\n"), 0o600); err != nil {
				return fmt.Errorf("store %s: %w", s.Name, err)
			}
		}
	}
	mode := fs.FileMode(0o644)
	if r.SpecHoldsSecrets() {
		mode = 0o600
	}
	if err := fsys.WriteAtomic(out, r.Spec, mode); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// SpecHoldsSecrets reports whether kept settings put a secret inline in the
// spec's extra block (Write then makes the spec 0600).
func (r *Result) SpecHoldsSecrets() bool {
	for _, f := range r.Findings {
		if f.Kind == KindKept && strings.Contains(f.Reason, "it is a secret") {
			return true
		}
	}
	return false
}

func (r *Result) secretValue(name string) string {
	if name == secrets.TURNSecret {
		return r.Secrets.TURNSecret.Reveal()
	}
	for _, a := range files.Accounts() {
		if a.StateFile() == name {
			return r.Secrets.Password(a.Name).Reveal()
		}
	}
	return ""
}
