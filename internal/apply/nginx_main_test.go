package apply

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// longDomain is the longest domain the spec accepts (spec.MaxDomainLength,
// 245: DOMAIN-config.js must fit in a file name), labels of at most 63.
func longDomain() string {
	l := strings.Repeat("a", 63)
	return l + "." + l + "." + l + "." + strings.Repeat("b", spec.MaxDomainLength-3*64)
}

// nginxSiteSet renders the built-in nginx site (and its link) for domain.
func nginxSiteSet(t *testing.T, domain string) *render.Set {
	t.Helper()
	dir := t.TempDir()
	src := `domain = "` + domain + `"
auth "anonymous" {}
turn { enabled = false }
tls {
  certificate = "/etc/ssl/site.crt"
  key         = "/etc/ssl/site.key"
}
`
	p := filepath.Join(dir, "meet.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	res := spec.Load(p, spec.Options{})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	d := res.Deployment
	d.Secrets = spec.Secrets{Passwords: map[string]spec.Secret{"focus": spec.NewSecret("focus-password-0123456789"), "jvb": spec.NewSecret("jvb-password-0123456789")}}
	full, err := render.Render(render.Input{Deployment: d, Templates: templates.Builtin})
	if err != nil {
		t.Fatal(err)
	}
	set := &render.Set{}
	for _, f := range full.Files {
		if strings.HasPrefix(f.Path, "/etc/nginx/") {
			set.Files = append(set.Files, f)
		}
	}
	if len(set.Files) != 2 {
		t.Fatalf("want the site and its link, got %d files", len(set.Files))
	}
	set.Sort()
	localOwners(set)
	return set
}

// stockNginx copies the host's /etc/nginx (Debian's stock nginx.conf,
// mime.types, modules-enabled, the default site) under root.
func stockNginx(t *testing.T, root string) {
	t.Helper()
	testenv.File(t, "/etc/nginx/nginx.conf", "apt-get install nginx-light")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/etc/nginx", filepath.Join(root, "etc/nginx")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	// Only Debian's own sites: a host test may have left others.
	ents, _ := os.ReadDir(filepath.Join(root, "etc/nginx/sites-enabled"))
	for _, e := range ents {
		if e.Name() != "default" {
			os.Remove(filepath.Join(root, "etc/nginx/sites-enabled", e.Name()))
		}
	}
}

// TestNginxCheckUsesTheHostsMainConfig: the staged site is checked inside
// the host's own nginx.conf (Debian's stock one here, with its default site
// on port 80 too), so the longest domain passes only because the site
// sizes server_names_hash_bucket_size itself, and a main config that also
// sets it is refused with the fix.
func TestNginxCheckUsesTheHostsMainConfig(t *testing.T) {
	testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	long := longDomain()
	if len(long) != spec.MaxDomainLength {
		t.Fatalf("domain has %d characters", len(long))
	}
	set := nginxSiteSet(t, long)
	site, _ := set.Lookup("/etc/nginx/sites-available/" + long + ".conf")
	if !strings.Contains(string(site.Content), "server_names_hash_bucket_size 512;") {
		t.Fatalf("the site does not size the hash for the longest name")
	}

	e := newEnv(t)
	e.opts.NoTools = false
	stockNginx(t, e.root)
	res := e.apply(set)
	if !res.Changed() {
		t.Fatal("nothing applied")
	}

	// The pinned size of old (64) does not fit the name: proven by the
	// same check refusing it.
	old := nginxSiteSet(t, long)
	for i := range old.Files {
		if old.Files[i].Kind == render.KindFile {
			old.Files[i].Content = []byte(strings.Replace(string(old.Files[i].Content), "server_names_hash_bucket_size 512;", "server_names_hash_bucket_size 64;", 1))
		}
	}
	if _, err := Apply(context.Background(), old, e.opts); err == nil || !strings.Contains(err.Error(), "server_names_hash_bucket_size") {
		t.Fatalf("a 64-byte bucket for the longest name passed: %v", err)
	}

	// An admin who uncommented the directive in nginx.conf: refused, with
	// the fix, before anything is swapped.
	e2 := newEnv(t)
	e2.opts.NoTools = false
	stockNginx(t, e2.root)
	mainConf := filepath.Join(e2.root, "etc/nginx/nginx.conf")
	b, _ := os.ReadFile(mainConf)
	b = []byte(strings.Replace(string(b), "# server_names_hash_bucket_size 64;", "server_names_hash_bucket_size 64;", 1))
	if err := os.WriteFile(mainConf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Apply(context.Background(), set, e2.opts)
	if err == nil || !strings.Contains(err.Error(), "directive is duplicate") || !strings.Contains(err.Error(), "remove the directive from nginx.conf") ||
		!strings.Contains(err.Error(), "nginx -t (with /etc/nginx/nginx.conf)") {
		t.Fatalf("duplicate directive: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(e2.root, "etc/nginx/sites-available", long+".conf")); err == nil {
		t.Fatal("the site was written despite the failed check")
	}

	// A short domain needs no directive at all (Debian's default holds it).
	short := nginxSiteSet(t, "meet.example.com")
	s, _ := short.Lookup("/etc/nginx/sites-available/meet.example.com.conf")
	if strings.Contains(string(s.Content), "server_names_hash_bucket_size") {
		t.Fatal("a short domain got a bucket size")
	}
	if _, err := Apply(context.Background(), short, e2.opts); err != nil {
		t.Fatalf("short domain with the admin's directive: %v", err)
	}
}
