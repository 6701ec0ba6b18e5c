package adopt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jitsi-agent/jitsi-agent/internal/adopt/adopttest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The readers against the real consumers: Prosody's own configmanager
// (under lua5.4), Typesafe Config (java, as jicofo and the videobridge load
// their files) and node (config.js). The corpus is every file the quick
// install writes (plain, with tokens, hand-edited) and every file the spec
// corpus renders, plus tricky hand-written inputs.

type corpusFile struct {
	kind string // prosody, hocon, js
	name string
	src  []byte
}

func realCorpus(t *testing.T) []corpusFile {
	t.Helper()
	var out []corpusFile
	add := func(root, name string) {
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			b, _ := os.ReadFile(p)
			rel := name + strings.TrimPrefix(p, root)
			switch {
			case strings.HasSuffix(p, ".cfg.lua") && !strings.HasSuffix(p, "jaas.cfg.lua"):
				out = append(out, corpusFile{"prosody", rel, b})
			case strings.HasSuffix(p, "jicofo.conf") || strings.HasSuffix(p, "jvb.conf"):
				out = append(out, corpusFile{"hocon", rel, b})
			case strings.HasSuffix(p, "-config.js"):
				out = append(out, corpusFile{"js", rel, b})
			}
			return nil
		})
	}
	add(adopttest.QuickInstall(t, false), "quick")
	add(adopttest.QuickInstall(t, true), "tokens")
	// the files an import of a hand-edited host renders, extras included
	res, _ := importRoot(t, adopttest.HandEdited(t))
	rendered := t.TempDir()
	writeSet(t, rendered, res.Rendered)
	add(rendered, "imported-handedit")
	for _, s := range specCorpus(t) {
		root, _ := renderSpecToRoot(t, s)
		add(root, filepath.Base(s))
	}
	out = append(out,
		corpusFile{"hocon", "tricky.conf", []byte(`# comment
a.b.c = 1
a { b { d = "x" }, e = [1, 2
  3] }
"quoted.key" = yes // comment
t = 90 seconds
u = 3f1e5c2a-9b7d
v = """multi "line"
text"""
w : [ "a" "b", c ]
x = { y = 1 }
x { z = 2 }
x.y = 3
n = null
f = 1.5
neg = -2
ws = "a" "b"
arr = [
  { name = "n0", local-address = "10.0.0.1" }
  { name = "n1" }
]
`)},
		corpusFile{"prosody", "tricky.cfg.lua", []byte(`local base = "example.com"
admins = { "admin@" .. base }
modules_enabled = { "a"; "b", "c" }
VirtualHost ("meet." .. base)
    authentication = "token" -- do not delete me
    n = 5 * 2
    nested = { x = { 1, 2 }, ["y-z"] = true }
    copy = admins
Component "c.meet.example.com" "muc"
    modules_enabled = { "m" }
Component "ext.meet.example.com"
    component_secret = "s3cr3t"
VirtualHost "meet.example.com"
    later = "reopened"
`)},
		corpusFile{"js", "tricky-config.js", []byte(`var x = 2;
var config = { a: { b: [1, 'two'] }, 'c-d': x * 3 };
config.e = { f: true };
config.a.g = null;
if (config.e.f) { config.h = 'yes'; }
`)},
	)
	return out
}

func runTool(t *testing.T, name string, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return out
}

func normJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const prosodyDump = `package.path = "/usr/lib/prosody/?.lua;" .. package.path
package.cpath = "/usr/lib/prosody/?.so;" .. package.cpath
local cm = require "core.configmanager"
local cjson = require "cjson"
local ok, level, err = cm.load(arg[1])
if not ok then io.stderr:write(tostring(level) .. ": " .. tostring(err) .. "\n") os.exit(1) end
print(cjson.encode(cm.getconfig()))
`

func TestProsodyReaderMatchesConfigmanager(t *testing.T) {
	lua := testenv.LookPath(t, "lua5.4", "apt-get install lua5.4 lua-cjson prosody")
	testenv.File(t, "/usr/lib/prosody/core/configmanager.lua", "apt-get install prosody")
	// A short directory: Prosody's duplicate-option warning finds the line
	// through debug info whose short_src is cut at 60 characters.
	dir, err := os.MkdirTemp("/tmp", "pc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	script := filepath.Join(dir, "dump.lua")
	os.WriteFile(script, []byte(prosodyDump), 0o644)
	n := 0
	for _, f := range realCorpus(t) {
		if f.kind != "prosody" {
			continue
		}
		n++
		p := filepath.Join(dir, fmt.Sprintf("f%d.cfg.lua", n))
		os.WriteFile(p, f.src, 0o644)
		var real map[string]map[string]any
		if err := json.Unmarshal(runTool(t, lua, nil, script, p), &real); err != nil {
			t.Fatal(err)
		}
		cfg, err := parseProsody(f.name, f.src)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		ours := map[string]map[string]any{}
		for _, s := range cfg.Sections {
			m := map[string]any{}
			for k, o := range s.Opts {
				m[k] = o.Value
			}
			switch s.Kind {
			case "host":
				m["defined"] = true
			case "component":
				m["component_module"] = s.Module
				m["load_global_modules"] = false
			}
			ours[s.Name] = m
		}
		// `VirtualHost "*"` (how extra text returns to the global section)
		// marks the global section "defined", which Prosody ignores for "*".
		delete(real["*"], "defined")
		// cjson writes empty tables as {}: compare through JSON on both sides.
		if a, b := normJSON(t, real), normJSON(t, ours); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: Prosody's configmanager and the reader differ:\nprosody: %v\nreader:  %v", f.name, a, b)
		}
	}
	if n < 5 {
		t.Fatalf("only %d prosody files", n)
	}
}

func TestHOCONReaderMatchesTypesafe(t *testing.T) {
	java := testenv.LookPath(t, "java", "apt-get install default-jre-headless")
	jar := testenv.File(t, "/usr/share/java/typesafe-config.jar", "apt-get install libtypesafe-config-java")
	check, err := filepath.Abs("../render/testdata/Check.java")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	var docs []corpusFile
	for _, f := range realCorpus(t) {
		if f.kind != "hocon" {
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf("f%d.conf", len(files)))
		os.WriteFile(p, f.src, 0o644)
		files = append(files, p)
		docs = append(docs, f)
	}
	out := runTool(t, java, nil, append([]string{"-cp", jar, check}, files...)...)
	real := map[string]any{}
	for _, line := range strings.Split(string(out), "\n") {
		parts := strings.SplitN(line, "\t", 2)
		if len(parts) != 2 || strings.HasPrefix(parts[1], "DURATION") {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(parts[1]), &v); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		real[parts[0]] = v
	}
	for i, f := range docs {
		doc, err := parseHOCON(f.name, f.src)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if a, b := real[files[i]], normJSON(t, plain(doc.root)); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: Typesafe Config and the reader differ:\ntypesafe: %v\nreader:   %v", f.name, a, b)
		}
	}
	if len(docs) < 10 {
		t.Fatalf("only %d HOCON files", len(docs))
	}
}

func TestConfigJSReaderMatchesNode(t *testing.T) {
	node := testenv.LookPath(t, "node", "apt-get install nodejs")
	n := 0
	for _, f := range realCorpus(t) {
		if f.kind != "js" {
			continue
		}
		n++
		src := ssiEcho().ReplaceAllString(string(f.src), "$1") // what nginx serves
		prog := "const vm=require('vm');let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const ctx={};vm.runInNewContext(s+';this.cfg=config;',ctx);process.stdout.write(JSON.stringify(ctx.cfg));});"
		var real any
		if err := json.Unmarshal(runTool(t, node, []byte(src), "-e", prog), &real); err != nil {
			t.Fatal(err)
		}
		cfg, err := parseConfigJS(f.name, f.src)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if b := normJSON(t, cfg.Value); !reflect.DeepEqual(real, b) {
			t.Errorf("%s: node and the reader differ:\nnode:   %v\nreader: %v", f.name, real, b)
		}
	}
	if n < 5 {
		t.Fatalf("only %d config.js files", n)
	}
}

// TestImportedNginxSiteLoads: the site an import renders, with the kept
// http-context blocks and the custom location, passes nginx -t.
func TestImportedNginxSiteLoads(t *testing.T) {
	nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	openssl := testenv.LookPath(t, "openssl", "apt-get install openssl")
	res, _ := importRoot(t, adopttest.HandEdited(t))
	f := renderedFile(res.Rendered, nginxPath(adopttest.Domain))
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	runTool(t, openssl, nil, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN="+adopttest.Domain, "-days", "1", "-keyout", key, "-out", crt)
	site := strings.ReplaceAll(string(f.Content), "/etc/jitsi/meet/"+adopttest.Domain+".crt", crt)
	site = strings.ReplaceAll(site, "/etc/jitsi/meet/"+adopttest.Domain+".key", key)
	site = strings.ReplaceAll(site, "/var/log/nginx/", dir+"/")
	if !strings.Contains(site, "location /custom/") || !strings.Contains(site, "map $arg_vnode") {
		t.Fatal("extras not in the rendered site")
	}
	os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644)
	conf := fmt.Sprintf("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n%s include /etc/nginx/mime.types;\n access_log off;\n include %s/site.conf;\n}\n", dir, dir, testenv.NginxTempPaths(dir), dir)
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, nginx, "-t", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// TestImportedProsodyChecks: the Prosody file an import renders, with the
// kept sections and the extra module, passes prosodyctl check config.
func TestImportedProsodyChecks(t *testing.T) {
	prosodyctl := testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	res, _ := importRoot(t, adopttest.HandEdited(t))
	f := renderedFile(res.Rendered, prosodyPath(adopttest.Domain))
	dir, err := os.MkdirTemp("/tmp", "pctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // prosodyctl reads as the prosody user
	os.MkdirAll(filepath.Join(dir, "data"), 0o777)
	os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf.d", adopttest.Domain+".cfg.lua"), f.Content, 0o644)
	main := filepath.Join(dir, "prosody.cfg.lua")
	os.WriteFile(main, []byte(strings.Join([]string{
		`modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "posix"; "ping"; "smacks"; }`,
		fmt.Sprintf("pidfile = %q", filepath.Join(dir, "prosody.pid")),
		fmt.Sprintf("data_path = %q", filepath.Join(dir, "data")),
		"c2s_ports = { 1 }", "http_ports = { 2 }", "https_ports = { }", "s2s_ports = { }",
		"c2s_direct_tls_ports = { }", "s2s_direct_tls_ports = { }", "component_ports = { }",
		fmt.Sprintf("Include %q", filepath.Join(dir, "conf.d", "*.cfg.lua")), "",
	}, "\n")), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, prosodyctl, "--config", main, "check", "config").CombinedOutput()
	// Exit 1 is a file Prosody cannot load; 2 is warnings (here the quick
	// install's own obsolete cross_domain_bosh, kept as the host had it),
	// which apply accepts too.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2 && bytes.Contains(out, []byte("Checking config..."))) {
		t.Fatalf("prosodyctl check config: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Duplicate option")) {
		t.Errorf("the extra text sets an option twice:\n%s", out)
	}
}
