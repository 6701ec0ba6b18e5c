package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithDeadline loads a spec and fails the test if Load does not return:
// an input that blocks (a FIFO) must never hang it.
func loadWithDeadline(t *testing.T, path string, opts Options) *Result {
	t.Helper()
	if opts.LookupEnv == nil {
		opts.LookupEnv = env(map[string]string{"JITSI_AGENT_TEST_SECRET": testSecret})
	}
	done := make(chan *Result, 1)
	go func() { done <- Load(path, opts) }()
	select {
	case res := <-done:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("Load did not return within 30s")
		return nil
	}
}

func diagText(res *Result) string {
	var b bytes.Buffer
	res.WriteDiagnostics(&b)
	return strings.Join(strings.Fields(b.String()), " ")
}

func writeSpec(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSpecFIFONeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "spec.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	res := loadWithDeadline(t, fifo, Options{})
	if !res.HasErrors() || !strings.Contains(diagText(res), "FIFO") {
		t.Fatalf("FIFO spec: %s", diagText(res))
	}
	// The same FIFO as a file() argument and as a template source.
	p := writeSpec(t, `domain = "meet.example.com"
auth "jwt" {
  app_id     = file("`+fifo+`")
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
template "t" {
  source      = "`+fifo+`"
  destination = "/srv/app/t.conf"
}
`)
	res = loadWithDeadline(t, p, Options{})
	if out := diagText(res); strings.Count(out, "FIFO") < 2 {
		t.Fatalf("FIFO file() and template source: %s", out)
	}
}

func TestSpecDevZeroRefused(t *testing.T) {
	for _, p := range []string{"/dev/zero", "/proc/self/environ"} {
		res := loadWithDeadline(t, p, Options{})
		if !res.HasErrors() || !strings.Contains(diagText(res), "holds no configuration") {
			t.Errorf("%s as spec: %s", p, diagText(res))
		}
	}
}

func TestDeepNestingIsADiagnostic(t *testing.T) {
	const n = 100_000
	cases := map[string]string{
		"parens":    "x = " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n),
		"lists":     "x = " + strings.Repeat("[", n) + strings.Repeat("]", n),
		"objects":   "x = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n),
		"unary":     "x = " + strings.Repeat("!", n) + "true",
		"negation":  "x = " + strings.Repeat("-", n) + "1",
		"chain":     "x = 1" + strings.Repeat("+1", n),
		"ternary":   "x = " + strings.Repeat("true?1:", n) + "2",
		"interp":    "x = " + strings.Repeat(`"${`, n) + "1" + strings.Repeat(`}"`, n),
		"directive": "x = <<EOT\n" + strings.Repeat("%{if true}", n/2) + strings.Repeat("%{endif}", n/2) + "\nEOT",
	}
	for name, expr := range cases {
		t.Run(name, func(t *testing.T) {
			p := writeSpec(t, "domain = \"meet.example.com\"\nauth \"anonymous\" {}\nlocals {\n"+expr+"\n}\n")
			res := loadWithDeadline(t, p, Options{})
			if out := diagText(res); !strings.Contains(out, "nested too deeply") || !(strings.Contains(out, "spec.hcl:4:") || strings.Contains(out, "spec.hcl:5:")) {
				t.Fatalf("want a located nesting diagnostic, got: %.300s", out)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "spec.hcl.json")
		os.WriteFile(p, []byte(`{"domain": "meet.example.com", "x": `+strings.Repeat("[", n)+strings.Repeat("]", n)+`}`), 0o600)
		if out := diagText(loadWithDeadline(t, p, Options{})); !strings.Contains(out, "nested too deeply") {
			t.Fatalf("JSON: %.300s", out)
		}
	})
	t.Run("json-template", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "spec.hcl.json")
		os.WriteFile(p, []byte(`{"domain": "${`+strings.Repeat("(", n)+"1"+strings.Repeat(")", n)+`}"}`), 0o600)
		if out := diagText(loadWithDeadline(t, p, Options{})); !strings.Contains(out, "nested too deeply") {
			t.Fatalf("JSON template: %.300s", out)
		}
	})
}

// Ordinary nesting stays well within the limit.
func TestModerateNestingLoads(t *testing.T) {
	p := writeSpec(t, `domain = "meet.example.com"
auth "anonymous" {}
locals {
  x = `+strings.Repeat("(", 50)+"1"+strings.Repeat(")", 50)+`
  y = [for i in range(3) : { n = i, s = "v${i + 1 * 2 - 1}" }]
  z = length(local.y) > 2 ? (true ? "a" : "b") : "c"
}
`)
	if res := loadWithDeadline(t, p, Options{}); res.HasErrors() {
		t.Fatal(diagText(res))
	}
}

func TestSecretTemplateDefaultsTo0640(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "env.tmpl"), []byte("A={{ .AppID }}\n{{ with . }}S={{ shell .AppSecret }}{{ end }}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "plain.tmpl"), []byte("# mentions AppSecret in text only\nD={{ .Domain }}\n"), 0o600)
	p := filepath.Join(dir, "spec.hcl")
	os.WriteFile(p, []byte(`domain = "meet.example.com"
auth "jwt" {
  app_id     = "app"
  app_secret = env("JITSI_AGENT_TEST_SECRET")
}
template "env" {
  source      = "env.tmpl"
  destination = "/srv/app/.env"
}
template "plain" {
  source      = "plain.tmpl"
  destination = "/srv/app/plain"
}
`), 0o600)
	res := loadWithDeadline(t, p, Options{})
	if res.HasErrors() {
		t.Fatal(diagText(res))
	}
	for _, tp := range res.Deployment.Templates {
		want := map[string]uint32{"env": 0o640, "plain": 0o644}[tp.Name]
		if tp.Mode != want {
			t.Errorf("template %s: mode %04o, want %04o", tp.Name, tp.Mode, want)
		}
	}
}

func TestTempMarkerInStep(t *testing.T) {
	// internal/fsys.TempMarker cannot be imported here (fsys imports
	// nothing of spec, but keep the dependency one way); the value is
	// checked by fsys's test against this constant's text.
	if TempMarker != ".jitsi-agent-tmp-" {
		t.Fatal("TempMarker changed: update internal/fsys too")
	}
}

// FuzzLoad feeds the loader arbitrary sources, seeded with deep nesting:
// it must return diagnostics, never crash or overflow the stack.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`domain = "meet.example.com"` + "\n" + `auth "anonymous" {}`))
	f.Add([]byte("x = " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000)))
	f.Add([]byte("x = " + strings.Repeat("[", 5000)))
	f.Add([]byte("x = " + strings.Repeat(`"${`, 3000)))
	f.Add([]byte("x = " + strings.Repeat("!", 5000) + "true"))
	f.Add([]byte("x = 1" + strings.Repeat("+1", 5000)))
	f.Add([]byte("x = <<EOT\n" + strings.Repeat("%{for a in b}", 3000) + "\nEOT"))
	f.Add([]byte("locals {\n a = \"x\"\n b = \"${local.a}${local.a}\"\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		read := func(p string) ([]byte, error) {
			if strings.HasPrefix(filepath.Base(p), "spec.hcl") {
				return src, nil
			}
			return nil, os.ErrNotExist
		}
		for _, name := range []string{"/fuzz/spec.hcl", "/fuzz/spec.hcl.json"} {
			if len(src) > MaxSpecFile {
				return // the reader refuses it before parsing
			}
			res := Load(name, Options{LookupEnv: env(nil), ReadFile: read, Hostname: func() (string, error) { return "h", nil }})
			var b bytes.Buffer
			res.WriteDiagnostics(&b)
		}
	})
}
