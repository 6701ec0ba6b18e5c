package files_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// rowProblems lists what a row is missing; every column must be filled (or
// explicitly empty where that has a meaning: Link, When, Secrets).
func rowProblems(f files.File) []string {
	var p []string
	miss := func(cond bool, what string) {
		if cond {
			p = append(p, what)
		}
	}
	miss(f.Template == "", "no template")
	miss(!strings.HasPrefix(f.Path, "/etc/"), "destination not under /etc")
	miss(f.Mode == 0 || f.Mode&^fs.ModePerm != 0, "no mode (or special bits)")
	miss(f.Mode&0o002 != 0, "world-writable")
	miss(f.Owner == "" || f.Group == "", "no owner/group")
	_, known := files.Lookup(f.Component)
	miss(!known && f.Component != files.Firewall, "unknown component "+f.Component)
	miss(f.Reload != files.ReloadUnit && f.Reload != files.ReloadNone && f.Reload != files.ReloadNft, "no reload class")
	miss((f.Reload == files.ReloadNft) != (f.Component == files.Firewall), "only the firewall row is loaded with nft")
	miss(f.Link != "" && f.LinkText == "", "link without link text")
	miss(f.Link == "" && f.LinkText != "", "link text without link")
	miss(len(f.WriteDirs) == 0, "no writable dirs for the hardened unit")
	miss(!files.Covered(f.Path, f.WriteDirs), "writable dirs do not cover "+f.Path)
	miss(f.Link != "" && !files.Covered(f.Link, f.WriteDirs), "writable dirs do not cover "+f.Link)
	miss(!slices.Contains(f.Validators, files.Builtin), "built-in check missing from validators")
	miss(f.Sensitive && len(f.Secrets) == 0, "sensitive without the secrets it carries")
	for _, s := range f.Secrets {
		miss(s == "", "empty secret name")
	}
	return p
}

func TestEveryRowIsComplete(t *testing.T) {
	tmpls := map[string]bool{}
	paths := map[string]bool{}
	for _, f := range files.Table() {
		if p := rowProblems(f); len(p) > 0 {
			t.Errorf("%s: %s", f.Path, strings.Join(p, "; "))
		}
		if tmpls[f.Template] {
			t.Errorf("%s: template %s used by two rows", f.Path, f.Template)
		}
		tmpls[f.Template] = true
		if _, err := fs.Stat(templates.Builtin, f.Template); err != nil {
			t.Errorf("%s: template %s is not in templates/: %v", f.Path, f.Template, err)
		}
		for _, p := range []string{f.Path, f.Link} {
			if p != "" && paths[p] {
				t.Errorf("%s written by two rows", p)
			}
			paths[p] = true
		}
	}
	// Every built-in template has its row.
	names, err := fs.Glob(templates.Builtin, "*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !tmpls[n] {
			t.Errorf("template %s has no row in the files table", n)
		}
	}
	for _, c := range files.Components() {
		if c.Unit == "" || c.Package == "" || files.Rank(c.Name) > len(files.Components()) {
			t.Errorf("component %+v incomplete", c)
		}
	}
}

// The test above must catch an incomplete row.
func TestIncompleteRowIsCaught(t *testing.T) {
	good := files.Table()[0]
	if p := rowProblems(good); len(p) != 0 {
		t.Fatalf("first row: %v", p)
	}
	for name, mutate := range map[string]func(*files.File){
		"template":   func(f *files.File) { f.Template = "" },
		"mode":       func(f *files.File) { f.Mode = 0 },
		"owner":      func(f *files.File) { f.Group = "" },
		"component":  func(f *files.File) { f.Component = "jigasi" },
		"reload":     func(f *files.File) { f.Reload = "" },
		"dirs":       func(f *files.File) { f.WriteDirs = nil },
		"dir cover":  func(f *files.File) { f.WriteDirs = []string{"/etc/nginx"} },
		"validators": func(f *files.File) { f.Validators = nil },
		"secrets":    func(f *files.File) { f.Secrets = nil },
		"link text":  func(f *files.File) { f.LinkText = "" },
	} {
		f := good
		mutate(&f)
		if len(rowProblems(f)) == 0 {
			t.Errorf("%s: an incomplete row passes", name)
		}
	}
}

// The validators column says what apply really runs on the file.
func TestValidatorsMatchApply(t *testing.T) {
	for _, f := range files.Table() {
		p := files.Expand(f.Path, "meet.example.com")
		var want []files.Validator
		for _, v := range f.Validators {
			switch v {
			case files.Luac, files.ProsodyCtl, files.NginxT, files.HAProxyC:
				want = append(want, v)
			}
		}
		// What apply runs on the rendered file is the row's column.
		if got := apply.Checkers(render.File{Path: p, Validators: f.Validators}, p, p); !slices.Equal(got, want) {
			t.Errorf("%s: apply runs %q, the table says %q", f.Path, got, want)
		}
		// A user template written there would get the same ones (apply's
		// path rules agree with the table).
		if got := apply.Checkers(render.File{Path: p}, p, p); !slices.Equal(got, want) {
			t.Errorf("%s: apply's path rules say %q, the table says %q", f.Path, got, want)
		}
	}
}

// The shipped unit lets the hardened daemon write exactly what the table
// needs under /etc (plus what accounts and nginx -t write elsewhere).
func TestShippedUnitMatchesTable(t *testing.T) {
	fh, err := os.Open(filepath.Join("..", "..", "systemd", "jitsi-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var rw []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ReadWritePaths=")
		if !ok {
			continue
		}
		for _, p := range strings.Fields(v) {
			rw = append(rw, strings.TrimPrefix(p, "-"))
		}
	}
	want := files.ReadWritePaths()
	for _, d := range want {
		if !slices.Contains(rw, d) {
			t.Errorf("ReadWritePaths lacks %s (the files table needs it)", d)
		}
	}
	// Written by tools the agent runs, not by a row: update-ca-certificates
	// rebuilds /etc/ssl/certs after the internal CA is installed
	// (internal/certs.InternalTrustPath).
	tools := []string{"/etc/ssl/certs"}
	for _, d := range rw {
		if strings.HasPrefix(d, "/etc/") && !slices.Contains(want, d) && !slices.Contains(tools, d) {
			t.Errorf("ReadWritePaths has %s, which no row of the files table needs", d)
		}
	}
}

func TestRankFollowsTheTable(t *testing.T) {
	names := files.ComponentNames()
	for i, n := range names {
		if files.Rank(n) != i {
			t.Errorf("rank(%s) = %d, want %d", n, files.Rank(n), i)
		}
	}
	if files.Rank("template:x") != len(names) || files.Rank("other") != len(names)+1 {
		t.Error("templates must follow the built-in components, other components last")
	}
}

// Every account row is complete, and its password reaches its component:
// one of the component's files carries the account's secret under the
// same condition (otherwise the component could not log in).
func TestEveryAccountIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range files.Accounts() {
		if a.Name == "" || strings.ContainsAny(a.Name, "@/ ") || seen[a.Name] {
			t.Errorf("account %q: empty, not a JID user part, or twice", a.Name)
		}
		seen[a.Name] = true
		if a.Host != files.AuthDomain && a.Host != files.RecorderDomain {
			t.Errorf("account %s: unknown host %q", a.Name, a.Host)
		}
		if _, ok := files.Lookup(a.Component); !ok {
			t.Errorf("account %s: unknown component %q", a.Name, a.Component)
		}
		if got, ok := files.AccountOf(a.Secret()); !ok || got.Name != a.Name {
			t.Errorf("account %s: AccountOf(%q) = %v, %v", a.Name, a.Secret(), got, ok)
		}
		carried := false
		for _, f := range files.Table() {
			if f.Component == a.Component && f.When == a.When && slices.Contains(f.Secrets, a.Secret()) {
				carried = true
			}
		}
		if !carried {
			t.Errorf("account %s: no %s file (When %q) lists the secret %q", a.Name, a.Component, a.When, a.Secret())
		}
	}
	// Every password a file carries belongs to an account row.
	for _, f := range files.Table() {
		for _, s := range f.Secrets {
			if s == files.AppSecret || s == files.TURNSecret {
				continue
			}
			if _, ok := files.AccountOf(s); !ok {
				t.Errorf("%s carries %q, which is no account of the accounts table", f.Path, s)
			}
		}
	}
}
