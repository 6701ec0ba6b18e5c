package fleet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func TestKeySealOpen(t *testing.T) {
	dir := t.TempDir()
	k, err := WriteNewKey(filepath.Join(dir, "a.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteNewKey(filepath.Join(dir, "a.key")); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
	again, err := ReadKey(filepath.Join(dir, "a.key"))
	if err != nil || again.ID != k.ID {
		t.Fatalf("read back: %v %v", again.ID, err)
	}
	other, _ := WriteNewKey(filepath.Join(dir, "b.key"))
	box := k.Seal([]byte("secret"), "ctx/1")
	if bytes.Contains(box, []byte("secret")) {
		t.Fatal("sealed box holds the plain text")
	}
	if p, err := again.Open(box, "ctx/1"); err != nil || string(p) != "secret" {
		t.Fatalf("open: %q %v", p, err)
	}
	if _, err := k.Open(box, "ctx/2"); !errors.Is(err, ErrWrongKey) {
		t.Fatal("box opened in another context")
	}
	if _, err := other.Open(box, "ctx/1"); !errors.Is(err, ErrWrongKey) {
		t.Fatal("box opened with another key")
	}
	box[len(box)-1] ^= 1
	if _, err := k.Open(box, "ctx/1"); !errors.Is(err, ErrWrongKey) {
		t.Fatal("altered box opened")
	}
	// A key others can read is refused.
	if err := os.Chmod(filepath.Join(dir, "a.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKey(filepath.Join(dir, "a.key")); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("zz\n"), 0o600)
	if _, err := ReadKey(bad); err == nil {
		t.Fatal("malformed key accepted")
	}
}

func TestWavesAndGate(t *testing.T) {
	hosts := []spec.Host{
		{Name: "jvb1", Roles: []string{spec.JVB}},
		{Name: "signal1", Roles: []string{spec.Prosody, spec.Jicofo, spec.Nginx}},
		{Name: "jvb2", Roles: []string{spec.JVB}},
		{Name: "turn1", Roles: []string{spec.Coturn}},
		{Name: "jvb3", Roles: []string{spec.JVB}},
	}
	plans := Waves(hosts, 2)
	got := map[string]int{}
	for _, p := range plans {
		got[p.Name] = p.Wave
	}
	want := map[string]int{"signal1": 0, "turn1": 1, "jvb1": 2, "jvb2": 2, "jvb3": 3}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: wave %d, want %d (%+v)", n, got[n], w, plans)
		}
	}
	g := &Generation{Number: 5, Hosts: plans}
	regs := map[string]*HostRecord{
		"signal1": {Generation: 5, Healthy: true},
		"turn1":   {Generation: 4, Healthy: true},
	}
	if ok, why := MayApply(g, "turn1", regs); !ok {
		t.Errorf("turn1 must go after a healthy signal1: %s", why)
	}
	if ok, why := MayApply(g, "jvb1", regs); ok || !strings.Contains(why, "turn1") {
		t.Errorf("jvb1 must wait for turn1: %v %s", ok, why)
	}
	regs["turn1"] = &HostRecord{Generation: 4, Target: 5, LastError: "check failed", Healthy: false}
	if ok, why := MayApply(g, "jvb3", regs); ok || !strings.Contains(why, "turn1 failed generation 5") {
		t.Errorf("a failed host stops the rollout: %v %s", ok, why)
	}
	regs["turn1"] = &HostRecord{Generation: 5, Healthy: false}
	if ok, _ := MayApply(g, "jvb1", regs); ok {
		t.Error("an unhealthy host stops the rollout")
	}
	delete(regs, "turn1") // down: does not hold the rollout
	if ok, why := MayApply(g, "jvb1", regs); !ok {
		t.Errorf("a host without lease held the rollout: %s", why)
	}
	// Same wave: jvb1 and jvb2 go together; jvb3 waits for both.
	regs["jvb1"] = &HostRecord{Generation: 5, Healthy: true}
	if ok, _ := MayApply(g, "jvb2", regs); !ok {
		t.Error("a host waited for its own wave")
	}
	regs["jvb2"] = &HostRecord{Generation: 4, Healthy: true}
	if ok, why := MayApply(g, "jvb3", regs); ok || !strings.Contains(why, "jvb2") {
		t.Errorf("jvb3 must wait for jvb2: %v %s", ok, why)
	}
	if ok, _ := MayApply(g, "nobody", regs); ok {
		t.Error("a host outside the generation may apply it")
	}
}

// Build carries what the spec read: relative and absolute files, the
// environment values it looked up (never the cluster secret's name), and
// Options answers only from the bundle.
func TestBuildCarriesInputs(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "note.txt")
	os.WriteFile(outside, []byte("outside file"), 0o600)
	os.WriteFile(filepath.Join(dir, "m.tmpl"), []byte("{{.Host}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "inside.txt"), []byte("inside"), 0o600) // read by absolute path
	src := `domain = "meet.example.com"
cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")
auth "anonymous" {}
locals {
  note  = file("` + outside + `")
  extra = env("FLEET_UNIT_EXTRA")
  inside = file("` + filepath.Join(dir, "inside.txt") + `")
}
extra { prosody = "-- ${local.note} ${local.extra} ${local.inside}" }
template "m" {
  source      = "m.tmpl"
  destination = "/etc/m.txt"
}
host "a" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx", "jvb"]
}
`
	p := filepath.Join(dir, "s.hcl")
	os.WriteFile(p, []byte(src), 0o600)
	t.Setenv("FLEET_UNIT_EXTRA", "from-env")
	t.Setenv(ClusterSecretEnv, "the pusher's own value must not travel")
	b, plans, err := Build(p, spec.Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].Name != "a" {
		t.Fatalf("plans: %+v", plans)
	}
	if string(b.Files[filepath.Join(dir, "m.tmpl")]) != "{{.Host}}\n" || string(b.Files[outside]) != "outside file" || b.Env["FLEET_UNIT_EXTRA"] != "from-env" {
		t.Fatalf("bundle: files %v env %v", b.FileNames(), b.EnvNames())
	}
	if _, ok := b.Env[ClusterSecretEnv]; ok {
		t.Fatal("the pusher's cluster secret travelled")
	}
	path, opts := b.Options("a", "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9")
	res := spec.Load(path, opts)
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	if !strings.Contains(res.Deployment.Extra.Prosody, "outside file from-env inside") || res.Deployment.ClusterSecret.Reveal() != "4e9d2b7a1c6f30e8d5b94a17c2e6f08b3d71a5c9" {
		t.Fatalf("loaded from the bundle: %q", res.Deployment.Extra.Prosody)
	}
	if _, err := opts.ReadFile("/etc/passwd"); err == nil {
		t.Fatal("a fleet spec read the host's disk")
	}
	if _, ok := opts.LookupEnv("HOME"); ok {
		t.Fatal("a fleet spec read the host's environment")
	}
	// templates_dir is refused.
	os.WriteFile(p, []byte(src+"templates_dir = \"tpl\"\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "tpl"), 0o700)
	if _, _, err := Build(p, spec.Options{}, 1); err == nil || !strings.Contains(err.Error(), "templates_dir") {
		t.Fatalf("templates_dir: %v", err)
	}
}

func TestBuildNeedsHostBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.hcl")
	os.WriteFile(p, []byte("domain = \"meet.example.com\"\nauth \"anonymous\" {}\n"), 0o600)
	if _, _, err := Build(p, spec.Options{}, 1); err == nil || !strings.Contains(err.Error(), "host blocks") {
		t.Fatalf("a spec without host blocks: %v", err)
	}
}
