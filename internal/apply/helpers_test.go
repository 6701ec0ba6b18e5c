package apply

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

const stateDir = "/var/lib/jitsi-agent"

type env struct {
	t    testing.TB
	root string
	opts Options
	log  bytes.Buffer
}

func newEnv(t testing.TB) *env {
	e := &env{t: t, root: t.TempDir()}
	e.opts = Options{Root: e.root, StateDir: stateDir, NoTools: true, Progress: &e.log}
	return e
}

func (e *env) real(p string) string { return filepath.Join(e.root, p) }

func (e *env) plan(set *render.Set) *plan.Plan {
	e.t.Helper()
	h, err := fsys.New(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := manifest.Load(manifest.Path(e.real(stateDir)))
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := plan.Compute(set, plan.Options{Host: h, Manifest: m, Redact: set.Redact, Diff: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) apply(set *render.Set) *Result {
	e.t.Helper()
	res, err := Apply(context.Background(), set, e.opts)
	if err != nil {
		e.t.Fatalf("apply: %v", err)
	}
	// The caller has reloaded the units (as internal/agent does).
	if err := Settle(e.opts, res.Serial); err != nil {
		e.t.Fatalf("settle: %v", err)
	}
	return res
}

func (e *env) read(p string) string {
	e.t.Helper()
	b, err := os.ReadFile(e.real(p))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) write(p, s string) {
	e.t.Helper()
	if err := os.WriteFile(e.real(p), []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// assertConverged checks that the host matches set and nothing is pending.
func (e *env) assertConverged(set *render.Set) {
	e.t.Helper()
	if p := e.plan(set); p.HasChanges() || p.ManifestStale {
		var sb strings.Builder
		p.WriteText(&sb)
		e.t.Fatalf("not converged (stale manifest %v):\n%s", p.ManifestStale, sb.String())
	}
	for _, f := range set.Files {
		if f.Kind == render.KindSymlink {
			if got, err := os.Readlink(e.real(f.Path)); err != nil || got != f.Target {
				e.t.Fatalf("%s: link %q (%v), want %q", f.Path, got, err, f.Target)
			}
			continue
		}
		if got := e.read(f.Path); got != string(f.Content) {
			e.t.Fatalf("%s: content %q, want %q", f.Path, got, f.Content)
		}
	}
	e.assertNoTemps()
}

func (e *env) assertNoTemps() {
	e.t.Helper()
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), fsys.TempMarker) {
			e.t.Fatalf("temporary file left: %s", p)
		}
		return nil
	})
}

// snapshot maps every file under root (except the state dir) to its bytes
// (or "link:"+target).
func (e *env) snapshot() map[string]string {
	out := map[string]string{}
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, e.real(stateDir)) {
			return nil
		}
		rel := strings.TrimPrefix(p, e.root)
		if d.Type()&fs.ModeSymlink != 0 {
			t, _ := os.Readlink(p)
			out[rel] = "link:" + t
			return nil
		}
		b, _ := os.ReadFile(p)
		fi, _ := os.Lstat(p)
		out[rel] = fi.Mode().String() + "|" + string(b)
		return nil
	})
	return out
}

const secretA, secretB = "s3cr3t-app-secret-AAAA", "s3cr3t-app-secret-BBBB"

// sampleSet is a small deployment; every file (and link) differs between
// versions "a" and "b".
func sampleSet(v string) *render.Set {
	secret := secretA
	if v == "b" {
		secret = secretB
	}
	hdr := "# Managed by jitsi-agent (" + v + ")\n"
	site := "/etc/nginx/sites-available/meet-" + v + ".conf"
	s := &render.Set{
		Files: []render.File{
			{Path: "/etc/prosody/conf.avail/meet.cfg.lua", Kind: render.KindFile, Mode: 0o640, Owner: "root", Group: "daemon",
				Content:   []byte("-- Managed by jitsi-agent (" + v + ")\nVirtualHost \"meet.example.com\"\n    app_id = \"meet\"\n    app_secret = \"" + secret + "\"\n"),
				Component: "prosody", Units: []string{"prosody.service"}, Sensitive: true},
			{Path: "/etc/prosody/conf.d/meet.cfg.lua", Kind: render.KindSymlink, Target: "../conf.avail/meet.cfg.lua", Component: "prosody", Units: []string{"prosody.service"}},
			{Path: "/etc/jitsi/jicofo/jicofo.conf", Kind: render.KindFile, Mode: 0o640, Content: []byte(hdr + "jicofo { xmpp { client { password = \"" + secret + "\" } } }\n"),
				Component: "jicofo", Units: []string{"jicofo.service"}, Sensitive: true},
			{Path: "/etc/jitsi/videobridge/jvb.conf", Kind: render.KindFile, Mode: 0o640, Content: []byte(hdr + "videobridge { version = " + v + " }\n"),
				Component: "jvb", Units: []string{"jitsi-videobridge2.service"}},
			{Path: site, Kind: render.KindFile, Mode: 0o644, Content: []byte(hdr + "server { listen 80; server_name meet.example.com; }\n"),
				Component: "nginx", Units: []string{"nginx.service"}},
			{Path: "/etc/nginx/sites-enabled/meet.conf", Kind: render.KindSymlink, Target: "../sites-available/meet-" + v + ".conf", Component: "nginx", Units: []string{"nginx.service"}},
			{Path: "/etc/turnserver.conf", Kind: render.KindFile, Mode: 0o640, Content: []byte(hdr + "static-auth-secret=" + secret + "\n"),
				Component: "coturn", Units: []string{"coturn.service"}, Sensitive: true},
			{Path: "/srv/app/config.txt", Kind: render.KindFile, Mode: 0o644, Content: []byte("app " + v + "\n"),
				Component: "template:app", Units: []string{"app.service"}},
		},
		Redact: []string{secret},
	}
	s.Sort()
	return s
}

// goldenSet loads a render golden directory (MANIFEST + files) as a Set.
func goldenSet(t testing.TB, name string) *render.Set {
	t.Helper()
	dir := filepath.Join("..", "render", "testdata", "golden", name)
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		t.Fatalf("golden set %s not available (it lives in internal/render/testdata/golden): %v", name, err)
	}
	defer f.Close()
	set := &render.Set{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := splitManifestLine(sc.Text())
		if len(fields) == 0 {
			continue
		}
		file := render.File{Path: fields[0]}
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "kind":
				file.Kind = render.Kind(v)
			case "mode":
				n, _ := strconv.ParseUint(v, 8, 32)
				file.Mode = fs.FileMode(n)
			case "owner":
				file.Owner = v
			case "group":
				file.Group = v
			case "component":
				file.Component = v
			case "units":
				if v != "" {
					file.Units = strings.Split(v, ",")
				}
			case "sensitive":
				file.Sensitive = v == "true"
			case "target":
				file.Target = v
			case "check":
				file.Check = v
			case "drift":
				file.Drift = v
			}
		}
		if file.Kind == render.KindFile {
			file.Content, err = os.ReadFile(filepath.Join(dir, file.Path))
			if err != nil {
				t.Fatal(err)
			}
		}
		set.Files = append(set.Files, file)
	}
	set.Sort()
	return set
}

func splitManifestLine(s string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for _, r := range s {
		switch {
		case r == '"':
			inQ = !inQ
			cur.WriteRune(r)
		case r == ' ' && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// localOwners rewrites owners/groups the test machine lacks to root.
func localOwners(set *render.Set) {
	h, _ := fsys.New("/")
	for i := range set.Files {
		f := &set.Files[i]
		if f.Owner != "" {
			if _, err := h.LookupUser(f.Owner); err != nil {
				f.Owner = "root"
			}
		}
		if f.Group != "" {
			if _, err := h.LookupGroup(f.Group); err != nil {
				f.Group = "root"
			}
		}
	}
}
