package adopt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Fixed test secrets (fixtures only).
const (
	testAppSecret = "ae971cee7d535e06e3d36d3d3eb4a02c47ff6d19"
	testFocus     = "test-focus-pw-4f8a2c"
	testJVB       = "test-jvb-pw-9d3e7b"
	testTURN      = "test-turn-secret-c0ffee42"
)

// renderSpecToRoot loads a spec, renders it with fixed secrets and writes
// the built-in files (and links) under a new root, as apply would.
func renderSpecToRoot(t *testing.T, path string) (string, *render.Set) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	host := ""
	if first, _, _ := strings.Cut(string(src), "\n"); strings.HasPrefix(first, "# host: ") {
		host = strings.TrimPrefix(first, "# host: ")
	}
	lr := spec.Load(path, spec.Options{
		Host: host,
		LookupEnv: func(k string) (string, bool) {
			switch k {
			case "JITSI_APP_SECRET":
				return testAppSecret, true
			case "JOIN_API_KEY":
				return "b7e1f04c9a2d6835e0c4a9f1d7b3e52c", true
			}
			return "", false
		},
		Hostname: func() (string, error) { return "meet1", nil },
	})
	if lr.HasErrors() {
		var b bytes.Buffer
		lr.WriteDiagnostics(&b)
		t.Fatalf("%s: %s", path, b.String())
	}
	d := lr.Deployment
	d.Templates = nil // user templates are the app's files, not Jitsi's
	// token_api is jitsi-agent's own service (keys, listener), which no
	// Jitsi file holds; its only trace, mod_muc_size, is covered by
	// TestTokenAPITraceKept.
	d.TokenAPI = nil
	// The whole tree as apply writes it (certificates, internal CA kept in
	// the state directory under root), with fixed internal secrets.
	root := t.TempDir()
	sec := filepath.Join(root, d.StateDir, "secrets")
	os.MkdirAll(sec, 0o700)
	for name, v := range map[string]string{"focus_password": testFocus, "jvb_password": testJVB, "turn_secret": testTURN} {
		os.WriteFile(filepath.Join(sec, name), []byte(v+"\n"), 0o600)
	}
	set, err := agent.DesiredState(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeSet(t, root, set)
	return root, set
}

func writeSet(t *testing.T, root string, set *render.Set) {
	t.Helper()
	for _, f := range set.Files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.Kind == render.KindSymlink {
			if err := os.Symlink(f.Target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
}

func specCorpus(t *testing.T) []string {
	t.Helper()
	specs, _ := filepath.Glob("testdata/specs/*.hcl")
	examples, _ := filepath.Glob("../../examples/*.hcl")
	if len(examples) == 0 || len(specs) == 0 {
		t.Fatal("no specs found")
	}
	return append(examples, specs...)
}

// TestRoundTrip: for every example and corpus spec, render -> import ->
// render gives the same bytes, every setting understood (no finding other
// than file modes the test's umask may change), and the imported spec is
// fmt-clean.
func TestRoundTrip(t *testing.T) {
	for _, path := range specCorpus(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			root, want := renderSpecToRoot(t, path)
			out := filepath.Join(t.TempDir(), "jitsi.hcl")
			res, err := Import(Options{Root: root, Out: out})
			if err != nil {
				t.Fatal(err)
			}
			// Every configuration file renders the same after import; the
			// rest of the tree (certificates, links) must be unchanged too,
			// which the empty report below says.
			wantBy := map[string]render.File{}
			for _, w := range want.Files {
				wantBy[w.Path] = w
			}
			if len(res.Rendered.Files) < 2 {
				t.Fatalf("only %d files rendered", len(res.Rendered.Files))
			}
			gotBy := map[string]bool{}
			for _, g := range res.Rendered.Files {
				gotBy[g.Path] = true
			}
			for _, w := range want.Files {
				support := strings.Contains(w.Path, "/certs/") || strings.HasPrefix(w.Path, "/usr/") || strings.HasSuffix(w.Path, ".crt") || strings.HasSuffix(w.Path, ".key") || strings.HasSuffix(w.Path, ".pem")
				if !gotBy[w.Path] && !support {
					t.Errorf("%s: not rendered after import", w.Path)
				}
			}
			for _, g := range res.Rendered.Files {
				w, ok := wantBy[g.Path]
				if !ok {
					t.Errorf("%s: rendered after import only", g.Path)
					continue
				}
				if w.Kind != g.Kind || w.Target != g.Target || w.Mode != g.Mode || !bytes.Equal(w.Content, g.Content) {
					t.Errorf("%s differs after import:\n%s", w.Path, firstDiff(string(w.Content), string(g.Content)))
				}
			}
			for _, f := range res.Findings {
				if f.Setting == "owner" && f.Line == 0 { // the test cannot chown
					continue
				}
				t.Errorf("unexpected finding: %+v", f)
			}
			if formatted, diags := spec.Format(out, res.Spec); diags.HasErrors() || !bytes.Equal(formatted, res.Spec) {
				t.Errorf("imported spec is not fmt-clean: %v", diags)
			}
			if t.Failed() {
				t.Logf("imported spec:\n%s", res.Spec)
			}
		})
	}
}

// TestImportGoldenTrees: the render package's golden trees (rendered from
// Go-built deployments, some of which no spec can express) import, and
// every file whose rendering changes has findings explaining it.
func TestImportGoldenTrees(t *testing.T) {
	dirs, err := filepath.Glob("../render/testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden trees: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, err := Import(Options{Root: dir, Out: filepath.Join(t.TempDir(), "jitsi.hcl")})
			if filepath.Base(dir) == "jwt-nat-ports-acme" {
				// web.http_port 8080 collides with the videobridge's REST port:
				// a spec refuses that, so import must say so.
				if err == nil || !strings.Contains(err.Error(), "8080") {
					t.Fatalf("want a port conflict error, got %v", err)
				}
				return
			}
			if strings.HasPrefix(filepath.Base(dir), "front-") {
				// A front-only host (HAProxy) has no Jitsi configuration
				// to import: import says so.
				if err == nil || !strings.Contains(err.Error(), "no Jitsi configuration") {
					t.Fatalf("want 'no Jitsi configuration' for a front-only tree, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			explained := map[string]bool{}
			for _, f := range res.Findings {
				explained[f.File] = true
			}
			for _, f := range res.Rendered.Files {
				if f.Kind != render.KindFile {
					continue
				}
				want, err := os.ReadFile(filepath.Join(dir, f.Path))
				if err != nil {
					if !explained[f.Path] {
						t.Errorf("%s rendered, not on the host, not in the report", f.Path)
					}
					continue
				}
				if !bytes.Equal(want, f.Content) && !explained[f.Path] {
					t.Errorf("%s changes without a finding:\n%s", f.Path, firstDiff(string(want), string(f.Content)))
				}
			}
		})
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "  line " + strings.TrimSpace(strings.Repeat(" ", 1)) + itoa(i+1) + "\n  host:     " + x + "\n  rendered: " + y
		}
	}
	return ""
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for i > 0 {
		s = string(rune('0'+i%10)) + s
		i /= 10
	}
	return s
}

// TestJibriSettingKept: a hand-set jibri.conf option survives import in
// extra.jibri, reported with its line.
func TestJibriSettingKept(t *testing.T) {
	root, _ := renderSpecToRoot(t, "testdata/specs/anonymous-recording-tenants-noturn.hcl")
	p := filepath.Join(root, "/etc/jitsi/jibri/jibri.conf")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Count(string(b), "\n") + 1
	os.WriteFile(p, append(b, []byte("jibri.ffmpeg.resolution = \"1280x720\"\n")...), 0o640)
	res, err := Import(Options{Root: root, Out: filepath.Join(t.TempDir(), "jitsi.hcl")})
	if err != nil {
		t.Fatal(err)
	}
	var kept *Finding
	for i, f := range res.Findings {
		if f.File == "/etc/jitsi/jibri/jibri.conf" && f.Kind == KindKept && f.Setting == "jibri.ffmpeg.resolution" {
			kept = &res.Findings[i]
		}
	}
	if kept == nil || kept.Line != line {
		t.Fatalf("not kept at line %d: %+v\n%+v", line, kept, res.Findings)
	}
	doc, err := parseHOCON("rendered", renderedFile(res.Rendered, "/etc/jitsi/jibri/jibri.conf").Content)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := doc.str("jibri.ffmpeg.resolution"); v != "1280x720" {
		t.Errorf("rendered jibri.conf lacks the kept setting")
	}
}

// TestTokenAPITraceKept: a host rendered with token_api has mod_muc_size and
// enable_roomsize_token_verification on the main VirtualHost; import keeps
// both (the spec it writes has no token_api: its keys live elsewhere) and
// says why.
func TestTokenAPITraceKept(t *testing.T) {
	root, _ := renderSpecToRoot(t, "../../examples/meet.hcl")
	// render it again with the token_api the helper strips
	lr := spec.Load("../../examples/meet.hcl", spec.Options{LookupEnv: func(k string) (string, bool) {
		switch k {
		case "JITSI_APP_SECRET":
			return testAppSecret, true
		case "JOIN_API_KEY":
			return "b7e1f04c9a2d6835e0c4a9f1d7b3e52c", true
		}
		return "", false
	}, Hostname: func() (string, error) { return "meet1", nil }})
	if lr.HasErrors() || lr.Deployment.TokenAPI == nil {
		t.Fatal("examples/meet.hcl should load with a token_api")
	}
	d := lr.Deployment
	d.Templates = nil
	set, err := agent.DesiredState(d, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := renderedFileOf(set, "/etc/prosody/conf.avail/meet.example.com.cfg.lua")
	os.WriteFile(filepath.Join(root, f.Path), f.Content, f.Mode)
	res, err := Import(Options{Root: root, Out: filepath.Join(t.TempDir(), "jitsi.hcl")})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Deployment.Extra.ProsodyModules["meet.example.com"]; len(m) != 1 || m[0] != "muc_size" {
		t.Errorf("muc_size not kept: %v", res.Deployment.Extra.ProsodyModules)
	}
	found := false
	for _, f := range res.Findings {
		if strings.Contains(f.Setting, "module muc_size") && strings.Contains(f.Reason, "token_api") {
			found = true
		}
	}
	if !found {
		t.Errorf("no finding explains muc_size: %+v", res.Findings)
	}
	got := renderedFile(res.Rendered, f.Path)
	cfgA, _ := parseProsody("a", f.Content)
	cfgB, _ := parseProsody("b", got.Content)
	if fs, _, _ := compareProsody("x", cfgA, cfgB, false); len(fs) != 0 {
		t.Errorf("the imported spec changes Prosody: %+v", fs)
	}
}

func renderedFileOf(set *render.Set, p string) *render.File {
	for i := range set.Files {
		if set.Files[i].Path == p {
			return &set.Files[i]
		}
	}
	return nil
}
