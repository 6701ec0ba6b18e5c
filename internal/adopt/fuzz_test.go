package adopt

import (
	"fmt"
	"github.com/jitsi-agent/jitsi-agent/internal/adopt/adopttest"
	"strings"
	"testing"
)

// FuzzImportHOCON: the reader never panics, and what it reads survives
// being written back the way extra.jicofo / extra.jvb write it
// ("path = literal" lines), which import relies on.
func FuzzImportHOCON(f *testing.F) {
	for _, s := range []string{
		"jicofo {\n  xmpp.client { port = 5222, domain = \"auth.x\" }\n}\n",
		"a = [1, \"b\", { c = true }]\nd = 90 seconds\n\"e.f\" = null\n",
		"v = \"\"\"x\"\"\"\nw : [ a b, c ]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		doc, err := parseHOCON("f.conf", []byte(src))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range doc.Order {
			fmt.Fprintf(&b, "%s = %s\n", p, hoconLiteral(doc.Leaves[p].Value))
		}
		again, err := parseHOCON("again.conf", []byte(b.String()))
		if err != nil {
			t.Fatalf("written back, it does not parse: %v\n%s", err, b.String())
		}
		for _, p := range doc.Order {
			if hoconLiteral(normHOCON(doc.Leaves[p].Value)) != hoconLiteral(normHOCON(again.Leaves[p].Value)) {
				t.Fatalf("%s changed when written back:\n%s", p, b.String())
			}
		}
	})
}

// FuzzImportNginx: never panics; each parsed directive's source text parses
// back to the same directive (extra.nginx keeps blocks verbatim).
func FuzzImportNginx(f *testing.F) {
	for _, s := range []string{
		"server {\n  listen 443 ssl;\n  location = /x { return 204; }\n}\n",
		"map $a $b {\n  default x;\n  \"~^y\" \"${z}\";\n}\n",
		"log_format f '$remote_addr \"q\"';\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		nf, err := parseNginx("f.conf", []byte(src))
		if err != nil {
			return
		}
		for _, d := range nf.Top {
			text := nf.text(d)
			again, err := parseNginx("again.conf", []byte(text))
			if err != nil || len(again.Top) != 1 || again.Top[0].signature() != d.signature() {
				t.Fatalf("directive %q does not re-parse from its text %q: %v", d.signature(), text, err)
			}
		}
	})
}

// FuzzImportProsody and FuzzImportConfigJS: the sandboxes never panic and
// always return (errors are fine).
func FuzzImportProsody(f *testing.F) {
	for _, s := range []string{
		"VirtualHost \"a.example.com\"\n  modules_enabled = { \"bosh\" }\n",
		"Component \"c.a\" \"muc\"\n  x = { y = { 1, 2 } }\n",
		"local b = \"x\" .. \"y\"\nadmins = { b }\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := parseProsody("f.cfg.lua", []byte(src))
		if err == nil {
			for _, s := range cfg.Sections {
				for _, k := range s.Order {
					_ = luaLiteral(s.Opts[k].Value)
				}
			}
		}
	})
}

func FuzzImportConfigJS(f *testing.F) {
	for _, s := range []string{
		"var config = { hosts: { domain: 'a' }, p2p: { enabled: false } };\n",
		"var config = {};\nconfig.x = [1, { y: null }];\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if c, err := parseConfigJS("f-config.js", []byte(src)); err == nil {
			_ = c.leaves()
		}
	})
}

func FuzzImportCoturn(f *testing.F) {
	f.Add("use-auth-secret\nrealm=a\nexternal-ip=1.2.3.4/10.0.0.1\n# c\n")
	f.Fuzz(func(t *testing.T, src string) {
		lf, err := parseCoturn("t.conf", []byte(src))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, e := range lf.Entries {
			b.WriteString(strings.TrimSpace(e.Text) + "\n")
		}
		again, err := parseCoturn("again.conf", []byte(b.String()))
		if err != nil || len(again.Entries) != len(lf.Entries) {
			t.Fatalf("kept lines do not re-parse: %v", err)
		}
		for i := range lf.Entries {
			if again.Entries[i].Key != lf.Entries[i].Key || again.Entries[i].Value != lf.Entries[i].Value {
				t.Fatalf("line %d changed: %+v -> %+v", i, lf.Entries[i], again.Entries[i])
			}
		}
	})
}

// BenchmarkImportQuickInstall: a whole import of the hand-edited quick
// install (read, parse, derive, render twice, compare).
func BenchmarkImportQuickInstall(b *testing.B) {
	root := adopttest.HandEdited(b)
	out := b.TempDir() + "/jitsi.hcl"
	for b.Loop() {
		if _, err := Import(Options{Root: root, Out: out}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzImportLuaLiteral: a value written as extra.prosody text evaluates
// back to the same value.
func FuzzImportLuaLiteral(f *testing.F) {
	f.Add("a\"b\\c\n\x00\xff", 1.5, true)
	f.Fuzz(func(t *testing.T, s string, n float64, flag bool) {
		v := map[string]any{"s": s, "l": []any{s, flag}, "n": n}
		if n != n || n > 1e300 || n < -1e300 { // NaN and huge numbers are not config values
			return
		}
		src := "x = " + luaLiteral(v) + "\n"
		cfg, err := parseProsody("lit.cfg.lua", []byte(src))
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		if got := luaLiteral(cfg.Sections[0].Opts["x"].Value); got != luaLiteral(v) {
			t.Fatalf("round trip changed the value:\n%s\n%s", luaLiteral(v), got)
		}
	})
}
