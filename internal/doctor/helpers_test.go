package doctor

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

const (
	testDomain = "meet.example.test"
	testSecret = "s3cr3t-value-never-printed"
)

// testDeployment is a fully defaulted single-host JWT deployment, shaped
// like spec.Load's output.
func testDeployment() *spec.Deployment {
	d := &spec.Deployment{
		SourceFile: "/etc/jitsi-agent/meet.hcl",
		Domain:     testDomain,
		Host:       spec.Host{Name: "meet1", Roles: spec.DefaultRoles()},
		Auth: spec.Auth{Mode: spec.AuthJWT, Moderators: spec.ModeratorsToken, JWT: &spec.JWT{
			AppID: "myapp", AppSecret: spec.NewSecret(testSecret), Algorithm: "HS256",
			Issuers: []string{"myapp"}, Audiences: []string{"myapp"}, Lifetime: time.Hour,
			DomainVerification: true,
		}},
		Videobridge: spec.Videobridge{UDPPort: 10000, HealthURL: "http://127.0.0.1:8080/about/health"},
		Jicofo:      spec.JicofoSettings{HealthURL: "http://127.0.0.1:8888/about/health"},
		TURN:        spec.TURN{Enabled: true, Host: testDomain, Port: 3478, TLSPort: 5349, Secret: spec.NewSecret("turn-secret-never-printed")},
		TLS:         spec.TLS{Certificate: "/etc/jitsi/meet/" + testDomain + ".crt", Key: "/etc/jitsi/meet/" + testDomain + ".key"},
		Web:         spec.Web{HTTPPort: 80, HTTPSPort: 443, HTTPRedirect: true},
		StateDir:    "/var/lib/jitsi-agent",
		Services:    map[string]spec.Service{},
	}
	for _, c := range files.Components() {
		d.Services[c.Name] = spec.Service{Component: c.Name, Unit: c.Unit, Enabled: d.Feature(c.When), Restart: spec.RestartImmediate}
	}
	return d
}

// byID finds a result or fails the test.
func byID(t *testing.T, rs []Result, id string) Result {
	t.Helper()
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	t.Fatalf("no result %q among %v", id, ids)
	return Result{}
}

// expect asserts a status and that every warn/fail names a fix.
func expect(t *testing.T, r Result, st Status, seenContains ...string) {
	t.Helper()
	if r.Status != st {
		t.Errorf("%s: status %s, want %s (seen: %s; fix: %s)", r.ID, r.Status, st, r.Seen, r.Fix)
	}
	for _, s := range seenContains {
		if !strings.Contains(r.Seen, s) {
			t.Errorf("%s: seen %q does not contain %q", r.ID, r.Seen, s)
		}
	}
	assertFix(t, r)
}

func assertFix(t *testing.T, r Result) {
	t.Helper()
	if (r.Status == Warn || r.Status == Fail) && strings.TrimSpace(r.Fix) == "" {
		t.Errorf("%s is %s without a fix (seen: %s)", r.ID, r.Status, r.Seen)
	}
	for _, s := range []string{testSecret, "turn-secret-never-printed", "other-secret-in-file"} {
		if strings.Contains(r.Seen, s) || strings.Contains(r.Fix, s) {
			t.Errorf("%s leaks a secret", r.ID)
		}
	}
}

func assertAllFixes(t *testing.T, rep *Report) {
	t.Helper()
	for _, r := range rep.Results {
		assertFix(t, r)
	}
}

// newChecker builds a checker with env defaults filled (real ones unless
// the test replaced them).
func newChecker(d *spec.Deployment, env Env, root string) *checker {
	env = Defaults(env)
	if root == "" {
		root = "/"
	}
	return &checker{d: d, env: env, opts: Options{Root: root, Timeout: 5 * time.Second}}
}

type fakeResolver struct {
	addrs []string
	err   error
	block chan struct{} // when set, ignore ctx and wait for it
}

func (f fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return nil, f.err
	}
	var out []net.IPAddr
	for _, a := range f.addrs {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

func localAddrs(cidrs ...string) func() ([]net.Addr, error) {
	return func() ([]net.Addr, error) {
		var out []net.Addr
		for _, c := range cidrs {
			ip, n, err := net.ParseCIDR(c)
			if err != nil {
				panic(err)
			}
			out = append(out, &net.IPNet{IP: ip, Mask: n.Mask})
		}
		return out, nil
	}
}

func newACME() *spec.ACME { return &spec.ACME{Email: "ops@example.test"} }
