package spec

import (
	"slices"
	"strings"
	"testing"
)

const bootstrapBase = `domain = "meet.example.com"
auth "anonymous" {}
`

func TestBootstrapDefaults(t *testing.T) {
	d := loadHost(t, bootstrapBase, "")
	j := d.Bootstrap.JitsiRepo
	if j.Name != "jitsi" || j.URL != DefaultJitsiRepoURL || j.Suite != "stable/" || len(j.Components) != 0 ||
		j.KeyURL != DefaultJitsiKeyURL || j.KeyFingerprint != "66A9CD0595D6AFA247290D3BEF8B479E2DC1389C" {
		t.Errorf("jitsi repo defaults: %+v", j)
	}
	if d.Bootstrap.ProsodyRepo != nil {
		t.Errorf("prosody repo must be off by default: %+v", d.Bootstrap.ProsodyRepo)
	}
}

func TestBootstrapBlock(t *testing.T) {
	d := loadHost(t, bootstrapBase+`bootstrap {
  jitsi_repo {
    url             = "file:///srv/repo"
    suite           = "./"
    key_url         = "file:///srv/repo/key.asc"
    key_fingerprint = "0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567"
  }
  prosody_repo {
    suite           = "bookworm"
    key_fingerprint = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  }
}
`, "")
	j := d.Bootstrap.JitsiRepo
	if j.URL != "file:///srv/repo" || j.Suite != "./" || j.KeyFingerprint != "0123456789ABCDEF0123456789ABCDEF01234567" {
		t.Errorf("jitsi repo: %+v", j)
	}
	p := d.Bootstrap.ProsodyRepo
	if p == nil || p.Name != "prosody" || p.Suite != "bookworm" || !slices.Equal(p.Components, []string{"main"}) || !strings.HasPrefix(p.URL, "https://packages.prosody.im") {
		t.Errorf("prosody repo: %+v", p)
	}
}

func TestBootstrapBad(t *testing.T) {
	for _, c := range []struct{ block, want string }{
		{`jitsi_repo { key_fingerprint = "2DC1389C" }`, "Invalid key fingerprint"},
		{`jitsi_repo { url = "ftp://x" }`, "Invalid repository URL"},
		{`jitsi_repo { url = "https://a b" }`, "Invalid repository URL"},
		{`jitsi_repo { components = ["main"] }`, "Flat repository with components"},
		{`jitsi_repo { suite = "stable [trusted=yes]" }`, "Invalid suite"},
		{`prosody_repo { suite = "bookworm" }`, "Prosody repository key not pinned"},
		{`prosody_repo { key_fingerprint = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }`, "Prosody repository suite missing"},
	} {
		res := Load(writeSpec(t, bootstrapBase+"bootstrap {\n"+c.block+"\n}\n"), Options{})
		if !res.HasErrors() || !strings.Contains(diagText(res), c.want) {
			t.Errorf("%s: want error %q, got:\n%s", c.block, c.want, diagText(res))
		}
		if !strings.Contains(diagText(res), "spec.hcl:") {
			t.Errorf("%s: the error must name the file and line:\n%s", c.block, diagText(res))
		}
	}
}
