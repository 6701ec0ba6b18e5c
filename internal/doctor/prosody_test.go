package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// installProsodyModules puts a file for every module the test vhost loads
// in Prosody's core module directory (as if Prosody and Jitsi's plugins
// were installed).
func installProsodyModules(t *testing.T, root string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, ProsodyVhostPath(testDomain)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := prosody.ModelOf(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Names {
		for _, mod := range m.Hosts[n].Modules {
			testenv.WriteUnder(t, root, prosody.CoreModulesDir+"/mod_"+mod+".lua", "")
		}
	}
}

// installInternalCerts issues the internal certificates under root and
// puts the CA in the system bundle, as apply + update-ca-certificates do.
func installInternalCerts(t *testing.T, d *spec.Deployment, root string) {
	t.Helper()
	in, err := certs.LoadInternal(d, root, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range certs.InternalFiles(d, in) {
		testenv.WriteUnder(t, root, f.Path, string(f.Content))
	}
	testenv.WriteUnder(t, root, SystemTrustBundle, "# other CAs\n"+string(in.CAPEM))
}

func TestProsodyChecksBrokenStates(t *testing.T) {
	d, env, root := healthyHost(t)
	env = Defaults(env)
	c := newChecker(d, env, root)
	byID := func() map[string]Result {
		m := map[string]Result{}
		for _, r := range c.checkProsody(context.Background()) {
			m[r.ID] = r
		}
		return m
	}
	if r := byID(); r["prosody.plugins"].Status != Pass || r["prosody.internal-certs"].Status != Pass || r["prosody.trust"].Status != Pass {
		t.Fatalf("healthy: %+v", r)
	}

	// Jitsi's plugins missing (jitsi-meet-prosody not installed).
	if err := os.Remove(filepath.Join(root, prosody.CoreModulesDir, "mod_token_verification.lua")); err != nil {
		t.Fatal(err)
	}
	r := byID()["prosody.plugins"]
	if r.Status != Fail || !strings.Contains(r.Seen, "token_verification") || !strings.Contains(r.Fix, "jitsi-meet-prosody") {
		t.Errorf("missing plugin: %+v", r)
	}

	// auth.DOMAIN's certificate missing: c2s gets "No stream features".
	authCert, _ := certs.ProsodyCertPaths("auth." + testDomain)
	if err := os.Remove(filepath.Join(root, authCert)); err != nil {
		t.Fatal(err)
	}
	r = byID()["prosody.internal-certs"]
	if r.Status != Fail || !strings.Contains(r.Seen, authCert) || !strings.Contains(r.Fix, "jitsi-agent apply") {
		t.Errorf("missing auth cert: %+v", r)
	}

	// The CA not in the trust store: jicofo/jvb would refuse the login.
	testenv.WriteUnder(t, root, SystemTrustBundle, "# no internal CA\n")
	r = byID()["prosody.trust"]
	if r.Status != Fail || !strings.Contains(r.Fix, "update-ca-certificates") {
		t.Errorf("untrusted CA: %+v", r)
	}
}

// The live check against a Prosody that did not activate the domain (a
// SIGHUP after the config was written): fails naming the hosts.
func TestProsodyLiveCheck(t *testing.T) {
	d, env, root := healthyHost(t)
	src, _ := os.ReadFile(filepath.Join(root, ProsodyVhostPath(testDomain)))
	m, _ := prosody.ModelOf(src)
	env.Exec = liveCommander{out: "jitsi-agent-host localhost ping\n"}
	c := newChecker(d, Defaults(env), "/")
	r := c.checkLive(context.Background(), m)
	if r.Status != Fail || !strings.Contains(r.Seen, testDomain+" is not active") || !strings.Contains(r.Fix, "jitsi-agent apply") {
		t.Errorf("inactive domain: %+v", r)
	}
}

type liveCommander struct{ out string }

func (liveCommander) LookPath(name string) (string, error) { return "/usr/bin/" + name, nil }
func (l liveCommander) CombinedOutput(_ context.Context, name string, args ...string) ([]byte, error) {
	return []byte(l.out), nil
}
