package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartupStaysLean guards what `jitsi-agent version` and every other
// run pay before main: no package-level regexp.MustCompile in our code
// (compile on first use: sync.OnceValue), none of the dependencies whose
// package initialisation was half of every start (see README,
// Performance), and the launcher installed as jitsi-agent
// (cmd/jitsi-agent-launcher) links only what its own commands need.
func TestStartupStaysLean(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "../.." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		if strings.HasSuffix(f.Name.Name, "test") { // test helper packages
			return nil
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					eager := false
					ast.Inspect(v, func(n ast.Node) bool {
						if _, lit := n.(*ast.FuncLit); lit {
							return false // runs when called, not at start
						}
						if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "MustCompile" {
							if id, ok := sel.X.(*ast.Ident); ok && id.Name == "regexp" {
								eager = true
							}
						}
						return true
					})
					if eager {
						t.Errorf("%s: package-level regexp.MustCompile runs at every start; wrap it: sync.OnceValue(func() *regexp.Regexp { ... })",
							fset.Position(v.Pos()))
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	launcherLinksOnly(t, "../jitsi-agent-launcher")
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	// goja and gopher-lua (import's JavaScript and Lua engines) live in the
	// jitsi-agent-import program.
	for _, banned := range []string{"github.com/prometheus/client_golang/", "google.golang.org/protobuf/", "github.com/google/go-cmp/",
		"github.com/dop251/goja/", "github.com/yuin/gopher-lua/", "github.com/jitsi-agent/jitsi-agent/internal/adopt/"} {
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep+"/", banned) {
				t.Errorf("the binary imports %s again (package initialisation at every start)", dep)
				break
			}
		}
	}
}

// launcherLinksOnly checks the launcher's dependencies: of this module and
// others only the packages listed, of the standard library nothing from
// the families whose initialisation or size every start would pay for.
func launcherLinksOnly(t *testing.T, pkg string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.Standard}} {{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/jitsi-agent/jitsi-agent/"
	allowed := map[string]bool{
		mod + "cmd/jitsi-agent-launcher": true,
		mod + "internal/cli":             true, // the command table's parser, help, completion, man
		mod + "internal/suggest":         true,
		mod + "internal/commands":        true, // the command table
		mod + "internal/execpath":        true,
		mod + "internal/stamp":           true, // the no-op check
		mod + "internal/planfile":        true,
		mod + "internal/fsys":            true,
		mod + "internal/luamod":          true,
		"golang.org/x/sys/unix":          true,
	}
	bannedStd := []string{"net", "crypto/tls", "crypto/x509", "text/template", "html/template", "regexp", "encoding/xml",
		"compress", "archive", "log", "go", "os/exec", "os/signal", "database", "image", "mime"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		std, path, _ := strings.Cut(line, " ")
		if std == "false" {
			if !allowed[path] {
				t.Errorf("the launcher links %s: every jitsi-agent start pays for it; keep it in jitsi-agent-full (cmd/jitsi-agent)", path)
			}
			continue
		}
		for _, b := range bannedStd {
			if path == b || strings.HasPrefix(path, b+"/") {
				t.Errorf("the launcher links the standard library's %s: keep it in jitsi-agent-full (cmd/jitsi-agent)", path)
			}
		}
	}
}
