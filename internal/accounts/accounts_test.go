package accounts

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// counting wraps a Prosody and records the mutating calls.
type counting struct {
	Prosody
	mu    sync.Mutex
	calls []string
}

func (c *counting) Create(ctx context.Context, u, h string, pw spec.Secret) error {
	c.mu.Lock()
	c.calls = append(c.calls, "create "+u+"@"+h)
	c.mu.Unlock()
	return c.Prosody.Create(ctx, u, h, pw)
}

func (c *counting) SetPassword(ctx context.Context, u, h string, pw spec.Secret) error {
	c.mu.Lock()
	c.calls = append(c.calls, "passwd "+u+"@"+h)
	c.mu.Unlock()
	return c.Prosody.SetPassword(ctx, u, h, pw)
}

func (c *counting) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

func actions(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.JID+"="+string(r.Action))
	}
	return out
}

// realProsody writes a throwaway Prosody config whose data_path is a temp
// dir (owned by the prosody user when running as root, as prosodyctl drops
// to it).
func realProsody(t *testing.T) ProsodyCtl {
	t.Helper()
	bin := testenv.LookPath(t, "prosodyctl", "apt-get install prosody")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("prosody")
		if err != nil {
			testenv.Unavailable(t, "no prosody user", "apt-get install prosody")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(data, uid, gid); err != nil {
			t.Fatal(err)
		}
		// prosodyctl (as prosody) must reach the config through the temp dir.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	err := os.WriteFile(cfg, []byte(`pidfile = "`+filepath.Join(dir, "prosody.pid")+`"
data_path = "`+data+`"
log = { error = "*console" }
c2s_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
VirtualHost "auth.meet.example.test"
  authentication = "internal_hashed"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return ProsodyCtl{Path: bin, Config: cfg, DataPath: data}
}

func TestRealProsodyctl(t *testing.T) {
	p := realProsody(t)
	c := &counting{Prosody: p}
	m := &Manager{Prosody: c, StatePath: filepath.Join(t.TempDir(), "state", "accounts.json")}
	d := &spec.Deployment{Domain: "meet.example.test", Secrets: spec.Secrets{Passwords: map[string]spec.Secret{
		"focus": spec.NewSecret("focus-Secret-0001"),
		"jvb":   spec.NewSecret("jvb-Secret-0002"),
	}}}
	ctx := context.Background()

	rs, err := m.Ensure(ctx, ForDeployment(d))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := actions(rs), []string{"focus@auth.meet.example.test=created", "jvb@auth.meet.example.test=created"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first apply: %v", got)
	}
	if _, err := os.Stat(p.AccountFile("focus", "auth.meet.example.test")); err != nil {
		t.Fatalf("account file: %v", err)
	}
	for _, a := range ForDeployment(d) {
		if st, err := p.Check(ctx, a.User, a.Host, a.Password); err != nil || st != StatusMatches {
			t.Fatalf("%s: check = %v, %v (SCRAM check against Prosody's own hash)", a.JID(), st, err)
		}
	}
	if st, _ := p.Check(ctx, "focus", "auth.meet.example.test", spec.NewSecret("wrong")); st != StatusDiffers {
		t.Fatalf("wrong password: %v", st)
	}
	c.take()

	// Unchanged: nothing runs.
	rs, err = m.Ensure(ctx, ForDeployment(d))
	if err != nil {
		t.Fatal(err)
	}
	if calls := c.take(); len(calls) != 0 {
		t.Fatalf("unchanged apply ran %v", calls)
	}
	if got := actions(rs); got[0] != "focus@auth.meet.example.test=unchanged" || got[1] != "jvb@auth.meet.example.test=unchanged" {
		t.Fatalf("unchanged apply: %v", got)
	}

	// Rotated focus password: one passwd.
	d.Secrets.SetPassword("focus", spec.NewSecret("focus-Rotated-0003"))
	rs, err = m.Ensure(ctx, ForDeployment(d))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.take(); !reflect.DeepEqual(got, []string{"passwd focus@auth.meet.example.test"}) {
		t.Fatalf("rotation ran %v", got)
	}
	if rs[0].Action != Updated || rs[1].Action != Unchanged {
		t.Fatalf("rotation: %v", actions(rs))
	}
	if st, _ := p.Check(ctx, "focus", "auth.meet.example.test", d.Secrets.Password("focus")); st != StatusMatches {
		t.Fatalf("rotated password not in Prosody: %v", st)
	}

	// Account removed behind our back: recreated.
	if err := os.Remove(p.AccountFile("jvb", "auth.meet.example.test")); err != nil {
		t.Fatal(err)
	}
	rs, err = m.Ensure(ctx, ForDeployment(d))
	if err != nil {
		t.Fatal(err)
	}
	if rs[1].Action != Created {
		t.Fatalf("recreate: %v", actions(rs))
	}

	// Direct edge behaviour: adduser on an existing account, passwd on a missing one.
	if err := p.Create(ctx, "focus", "auth.meet.example.test", spec.NewSecret("x-password")); err != ErrExists {
		t.Fatalf("create existing: %v", err)
	}
	if err := p.SetPassword(ctx, "nobody", "auth.meet.example.test", spec.NewSecret("x-password")); err != ErrNotFound {
		t.Fatalf("passwd missing: %v", err)
	}

	b, err := os.ReadFile(m.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"focus-Secret-0001", "focus-Rotated-0003", "jvb-Secret-0002"} {
		if strings.Contains(string(b), s) {
			t.Fatal("the state file holds a password in clear")
		}
	}
	if fi, _ := os.Stat(m.StatePath); fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode().Perm())
	}
}

func TestPasswordNeverInArgv(t *testing.T) {
	sh := testenv.LookPath(t, "sh", "apt-get install dash")
	dir := t.TempDir()
	script := filepath.Join(dir, "prosodyctl")
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(script, []byte("#!"+sh+"\necho \"ARGS $*\" >> "+log+"\ncat >> "+log+"\necho 'Error: storage is on fire' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := ProsodyCtl{Path: script, DataPath: dir}
	pw := spec.NewSecret("very-Secret-pw-42")
	err := p.Create(context.Background(), "focus", "auth.x.test", pw)
	if err == nil || !strings.Contains(err.Error(), "storage is on fire") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), pw.Reveal()) {
		t.Fatal("the password leaked into the error")
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(string(b), "\n")
	if !strings.HasPrefix(lines[0], "ARGS adduser focus@auth.x.test") || strings.Contains(lines[0], pw.Reveal()) {
		t.Fatalf("argv: %q", lines[0])
	}
	if lines[1] != pw.Reveal() || lines[2] != pw.Reveal() {
		t.Fatalf("stdin should carry the password twice: %q", lines[1:])
	}
	if err := p.Create(context.Background(), "focus", "auth.x.test", spec.NewSecret("two\nlines")); err == nil {
		t.Fatal("a multi-line password must be refused")
	}
}

// unknownProsody cannot verify passwords (e.g. SQL storage).
type unknownProsody struct {
	mu       sync.Mutex
	accounts map[string]string
}

func (u *unknownProsody) Check(ctx context.Context, user, host string, pw spec.Secret) (Status, error) {
	return StatusUnknown, nil
}
func (u *unknownProsody) Create(ctx context.Context, user, host string, pw spec.Secret) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.accounts[user+"@"+host]; ok {
		return ErrExists
	}
	u.accounts[user+"@"+host] = pw.Reveal()
	return nil
}
func (u *unknownProsody) SetPassword(ctx context.Context, user, host string, pw spec.Secret) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.accounts[user+"@"+host]; !ok {
		return ErrNotFound
	}
	u.accounts[user+"@"+host] = pw.Reveal()
	return nil
}

func TestUnverifiableBackendUsesState(t *testing.T) {
	back := &unknownProsody{accounts: map[string]string{}}
	c := &counting{Prosody: back}
	m := &Manager{Prosody: c, StatePath: filepath.Join(t.TempDir(), "accounts.json")}
	acc := []Account{{User: "focus", Host: "auth.x.test", Password: spec.NewSecret("p1-xxxxxxxx")}}
	ctx := context.Background()
	rs, err := m.Ensure(ctx, acc)
	if err != nil || rs[0].Action != Created {
		t.Fatalf("%v %v", actions(rs), err)
	}
	if got := c.take(); !reflect.DeepEqual(got, []string{"passwd focus@auth.x.test", "create focus@auth.x.test"}) {
		t.Fatalf("calls %v", got)
	}
	rs, err = m.Ensure(ctx, acc)
	if err != nil || rs[0].Action != Unchanged || len(c.take()) != 0 {
		t.Fatalf("second: %v %v", actions(rs), err)
	}
	acc[0].Password = spec.NewSecret("p2-yyyyyyyy")
	rs, err = m.Ensure(ctx, acc)
	if err != nil || rs[0].Action != Updated || back.accounts["focus@auth.x.test"] != "p2-yyyyyyyy" {
		t.Fatalf("rotation: %v %v", actions(rs), err)
	}
	if _, err := m.Ensure(ctx, []Account{{User: "jvb", Host: "auth.x.test"}}); err == nil {
		t.Fatal("an empty password must be refused")
	}
}

func TestEncode(t *testing.T) {
	if got := encode("auth.meet-1.example_x.com"); got != "auth%2emeet%2d1%2eexample%5fx%2ecom" {
		t.Fatal(got)
	}
	// The encoding matches what prosodyctl wrote in TestRealProsodyctl;
	// here a quick guard that lua is the reference when available.
	if lua, err := exec.LookPath("lua5.4"); err == nil {
		out, err := exec.Command(lua, "-e", `io.write((("auth.meet-1.example_x.com"):gsub("%W", function(c) return string.format("%%%02x", c:byte()) end)))`).Output()
		if err != nil || string(out) != encode("auth.meet-1.example_x.com") {
			t.Fatalf("lua says %q (%v)", out, err)
		}
	}
}

func TestComponents(t *testing.T) {
	got := Components([]Result{{JID: "focus@auth.x", Action: Updated}, {JID: "jvb@auth.x", Action: Unchanged}})
	if !reflect.DeepEqual(got, []string{spec.Jicofo}) {
		t.Fatal(got)
	}
	got = Components([]Result{{JID: "focus@auth.x", Action: Unchanged}, {JID: "jvb@auth.x", Action: Created}})
	if !reflect.DeepEqual(got, []string{spec.JVB}) {
		t.Fatal(got)
	}
}

// The accounts come from the accounts table: focus and jvb always, Jibri's
// control and recorder logins only with recording, each with its stored
// password; a Jibri login change restarts Jibri once.
func TestForDeploymentFollowsTheTable(t *testing.T) {
	sec := spec.Secrets{Passwords: map[string]spec.Secret{"focus": spec.NewSecret("f"), "jvb": spec.NewSecret("j"), "jibri": spec.NewSecret("b"), "recorder": spec.NewSecret("r")}}
	d := &spec.Deployment{Domain: "meet.example.test", Secrets: sec}
	jids := func() []string {
		var out []string
		for _, a := range ForDeployment(d) {
			out = append(out, a.JID()+"="+a.Password.Reveal())
		}
		return out
	}
	if got, want := jids(), []string{"focus@auth.meet.example.test=f", "jvb@auth.meet.example.test=j"}; !reflect.DeepEqual(got, want) {
		t.Errorf("without recording: %q, want %q", got, want)
	}
	d.Meeting.Recording = spec.Recording{Enabled: true, RecorderDomain: "recorder.meet.example.test"}
	if got, want := jids(), []string{"focus@auth.meet.example.test=f", "jvb@auth.meet.example.test=j", "jibri@auth.meet.example.test=b", "recorder@recorder.meet.example.test=r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("with recording: %q, want %q", got, want)
	}
	got := Components([]Result{{JID: "jibri@auth.x", Action: Updated}, {JID: "recorder@recorder.x", Action: Created}, {JID: "focus@auth.x", Action: Updated}})
	if !reflect.DeepEqual(got, []string{spec.Jibri, spec.Jicofo}) {
		t.Errorf("components: %q", got)
	}
}
