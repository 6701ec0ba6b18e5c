package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

const (
	testSecret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978"
	pinned     = spec.DefaultJitsiKeyFingerprint
)

const testSpec = `domain = "meet.example.com"
host "meet1" {
  public_ips = ["203.0.113.10"]
}
auth "jwt" {
  app_id     = "my-app-id"
  app_secret = env("SECRET")
}
`

func load(t *testing.T, src string, secret string) *spec.Deployment {
	t.Helper()
	p := filepath.Join(t.TempDir(), "meet.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	res := spec.Load(p, spec.Options{LookupEnv: func(k string) (string, bool) {
		if k == "SECRET" {
			return secret, true
		}
		return "", false
	}})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	return res.Deployment
}

// fakeHost is a Debian host in memory: files, the dpkg database, debconf,
// held packages, systemd units. It records every command.
type fakeHost struct {
	files     map[string][]byte
	installed map[string]bool
	debconf   map[string]string
	held      []string
	locked    bool
	units     map[string]string // unit -> "enabled active", "" = not installed
	// keys served by Fetch, and what gpg --show-keys says about each.
	served   map[string][]byte
	keyFprs  map[string][]string
	repoDown bool
	applied  int
	// provides: what installing a package adds as units.
	provides map[string]string

	cmds []string // "name args..." in order
	in   [][]byte // stdin of each command
	// installedAtApply: what each apply was told the run installed.
	installedAtApply []string
	// secrets counts the calls of Options.Secrets (the agent creating
	// its internal secrets).
	secrets int
}

// Passwords the fake agent's secrets hold.
const (
	focusPassword = "focus-pw-5f0c2b7e9a41d3c8"
	jvbPassword   = "jvb-pw-8e21a4c6b0d9f357"
)

func newFakeHost() *fakeHost {
	h := &fakeHost{
		files: map[string][]byte{}, installed: map[string]bool{}, debconf: map[string]string{},
		units:   map[string]string{"jitsi-agent.service": "disabled inactive"},
		served:  map[string][]byte{spec.DefaultJitsiKeyURL: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\njitsi\n")},
		keyFprs: map[string][]string{"-----BEGIN PGP PUBLIC KEY BLOCK-----\njitsi\n": {pinned}, "binary:jitsi": {pinned}},
		provides: map[string]string{"prosody": "prosody.service", "jicofo": "jicofo.service", "jitsi-videobridge2": "jitsi-videobridge2.service",
			"nginx": "nginx.service", "coturn": "coturn.service"},
	}
	return h
}

func (h *fakeHost) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	h.cmds = append(h.cmds, strings.TrimSpace(name+" "+strings.Join(args, " ")))
	h.in = append(h.in, stdin)
	if name == "env" && len(args) > 0 && strings.HasPrefix(args[0], "DEBIAN_FRONTEND=") {
		name, args = args[1], args[2:]
	}
	switch name {
	case "apt-mark":
		return []byte(strings.Join(h.held, "\n")), nil
	case "gpg":
		if slices.Contains(args, "--dearmor") {
			return []byte("binary:" + strings.TrimPrefix(strings.TrimSpace(string(stdin)), "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")), nil
		}
		fprs, ok := h.keyFprs[string(stdin)]
		if !ok {
			return nil, errors.New("exit status 2: gpg: no valid OpenPGP data found")
		}
		var b strings.Builder
		for _, f := range fprs {
			fmt.Fprintf(&b, "pub:-:4096:1:EF8B479E2DC1389C:1466711583:::-:::scESC::::::23::0:\nfpr:::::::::%s:\nuid:-::::1466711583::X::Jitsi <dev@jitsi.org>::::::::::0:\nsub:-:4096:1:1:1:::::e::::::23:\nfpr:::::::::FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:\n", f)
		}
		return []byte(b.String()), nil
	case "dpkg-query":
		var b strings.Builder
		for _, p := range args[3:] {
			if h.installed[p] {
				fmt.Fprintf(&b, "%s ii \n", p)
			}
		}
		return []byte(b.String()), nil
	case "apt-get":
		switch args[0] {
		case "update":
			if h.repoDown {
				return nil, errors.New("exit status 100: E: Failed to fetch https://download.jitsi.org/stable/InRelease  Could not resolve 'download.jitsi.org'")
			}
			return nil, nil
		case "install":
			for _, a := range args {
				if !strings.HasPrefix(a, "-") && a != "install" && !strings.Contains(a, "::") {
					h.installed[a] = true
					if u := h.provides[a]; u != "" {
						h.units[u] = "enabled active"
					}
				}
			}
			return nil, nil
		}
	case "debconf-communicate":
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(string(stdin)), "\n") {
			q := strings.TrimPrefix(line, "GET ")
			if v, ok := h.debconf[q]; ok {
				fmt.Fprintf(&b, "0 %s\n", v)
			} else {
				fmt.Fprintf(&b, "10 %s doesn't exist\n", q)
			}
		}
		return []byte(b.String()), nil
	case "debconf-set-selections":
		for _, line := range strings.Split(strings.TrimSpace(string(stdin)), "\n") {
			f := strings.SplitN(line, " ", 4)
			h.debconf[f[1]] = f[3]
		}
		return nil, nil
	case "lua5.4":
		return nil, nil
	case "systemctl":
		unit := args[len(args)-1]
		if args[0] == "enable" {
			h.units[unit] = "enabled active"
			return nil, nil
		}
		st, ok := h.units[unit]
		if !ok {
			return []byte("LoadState=not-found\nUnitFileState=\nActiveState=inactive\n"), nil
		}
		f := strings.Fields(st)
		return []byte("LoadState=loaded\nUnitFileState=" + f[0] + "\nActiveState=" + f[1] + "\n"), nil
	}
	return nil, fmt.Errorf("fake host: unexpected command %s %v", name, args)
}

func (h *fakeHost) ReadFile(path string) ([]byte, error) {
	if b, ok := h.files[path]; ok {
		return b, nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

func (h *fakeHost) WriteFile(path string, data []byte, mode fs.FileMode) error {
	h.cmds = append(h.cmds, "write "+path)
	h.in = append(h.in, nil)
	h.files[path] = slices.Clone(data)
	return nil
}

func (h *fakeHost) Fetch(ctx context.Context, url string) ([]byte, error) {
	h.cmds = append(h.cmds, "fetch "+url)
	h.in = append(h.in, nil)
	if b, ok := h.served[url]; ok {
		return b, nil
	}
	return nil, errors.New("connection refused")
}

func (h *fakeHost) DpkgLock() (string, bool, error) {
	return "/var/lib/dpkg/lock-frontend", h.locked, nil
}

func (h *fakeHost) opts() Options {
	return Options{SpecPath: DaemonSpec,
		Apply: func(ctx context.Context, installed []string) (string, error) {
			h.cmds = append(h.cmds, "apply")
			h.installedAtApply = append(h.installedAtApply, strings.Join(installed, " "))
			h.in = append(h.in, nil)
			if h.applied > 0 {
				return "", nil
			}
			h.applied++
			return "3 files written", nil
		},
		ProsodyInterpreter: func() string { return "lua5.4" },
		Secrets: func(d *spec.Deployment) error {
			h.secrets++
			d.Secrets.SetPassword("focus", spec.NewSecret(focusPassword))
			d.Secrets.SetPassword("jvb", spec.NewSecret(jvbPassword))
			return nil
		}}
}

func (h *fakeHost) ran(prefix string) bool {
	for _, c := range h.cmds {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func TestFreshHostThenNoChanges(t *testing.T) {
	d := load(t, testSpec, testSecret)
	h := newFakeHost()
	var out bytes.Buffer
	res, err := Run(context.Background(), Plan(d, h.opts()), h, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got := string(h.files["/etc/apt/sources.list.d/jitsi.list"]); !strings.Contains(got, "deb [signed-by=/etc/apt/keyrings/jitsi.gpg] https://download.jitsi.org stable/\n") {
		t.Errorf("sources:\n%s", got)
	}
	if got := string(h.files["/etc/apt/keyrings/jitsi.gpg"]); got != "binary:jitsi" {
		t.Errorf("the keyring must be the dearmored key, got %q", got)
	}
	for _, p := range []string{"prosody", "jitsi-meet-prosody", "jitsi-meet-tokens", "jicofo", "jitsi-videobridge2", "nginx", "jitsi-meet-web", "lua-basexx", "lua-cjson", "lua-luaossl", "lua-inspect"} {
		if !h.installed[p] {
			t.Errorf("%s not installed", p)
		}
	}
	if !h.installed["coturn"] || h.installed["nftables"] {
		t.Error("want coturn (TURN is on by default) and no nftables (no firewall block)")
	}
	for q, want := range map[string]string{"jitsi-videobridge/jvb-hostname": "meet.example.com", "jitsi-meet/cert-choice": "I want to use my own certificate",
		"jitsi-meet/cert-path-crt": d.TLS.Certificate, "jitsi-meet/cert-path-key": d.TLS.Key,
		"jitsi-meet-tokens/appid": "my-app-id", "jitsi-meet-tokens/appsecret": testSecret,
		// The packages create focus@ and jvb@auth.DOMAIN with the agent's passwords.
		"jicofo/jicofo-authpassword": focusPassword, "jitsi-videobridge/jvbsecret": jvbPassword} {
		if got := h.debconf[q]; got != want {
			t.Errorf("debconf %s = %q, want %q", q, got, want)
		}
	}
	if h.units["jitsi-agent.service"] != "enabled active" {
		t.Errorf("daemon: %q", h.units["jitsi-agent.service"])
	}
	// The apply learns what this run installed (their services restart
	// now, whatever their restart policy).
	if len(h.installedAtApply) != 1 || !strings.Contains(" "+h.installedAtApply[0]+" ", " jicofo ") || !strings.Contains(" "+h.installedAtApply[0]+" ", " jitsi-videobridge2 ") {
		t.Errorf("apply was told the run installed %q", h.installedAtApply)
	}
	// The order the packages need: repository, answers, packages, apply, daemon.
	order := []string{"write /etc/apt/keyrings/jitsi.gpg", "write /etc/apt/sources.list.d/jitsi.list", "apt-get update", "debconf-set-selections", "env DEBIAN_FRONTEND=noninteractive apt-get install", "apply", "systemctl enable --now jitsi-agent.service"}
	last := -1
	for _, o := range order {
		i := slices.IndexFunc(h.cmds, func(c string) bool { return strings.HasPrefix(c, o) })
		if i <= last {
			t.Errorf("%q at %d, want after %d:\n%s", o, i, last, strings.Join(h.cmds, "\n"))
		}
		last = i
	}
	if len(res.Changed) == 0 || strings.Count(out.String(), "\n") != len(Plan(d, h.opts())) {
		t.Errorf("one progress line per step:\n%s", out.String())
	}

	// Second run: nothing changes, nothing is fetched, installed or set.
	h.cmds, h.in = nil, nil
	out.Reset()
	res, err = Run(context.Background(), Plan(d, h.opts()), h, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 0 {
		t.Errorf("second run changed: %v", res.Changed)
	}
	for _, c := range []string{"fetch", "write", "apt-get update", "env DEBIAN_FRONTEND", "debconf-set-selections", "systemctl enable"} {
		if h.ran(c) {
			t.Errorf("second run ran %q:\n%s", c, strings.Join(h.cmds, "\n"))
		}
	}
	if strings.Count(out.String(), ": unchanged\n") != len(Plan(d, h.opts())) {
		t.Errorf("second run progress:\n%s", out.String())
	}
	if len(h.installedAtApply) != 2 || h.installedAtApply[1] != "" {
		t.Errorf("the second run installed nothing, apply was told %q", h.installedAtApply)
	}
}

func TestSecretOnlyOnStdin(t *testing.T) {
	d := load(t, testSpec, testSecret)
	h := newFakeHost()
	var out bytes.Buffer
	if _, err := Run(context.Background(), Plan(d, h.opts()), h, &out); err != nil {
		t.Fatal(err)
	}
	var dry bytes.Buffer
	PrintPlan(&dry, Plan(d, h.opts()))
	for i, c := range h.cmds {
		if strings.Contains(c, testSecret) {
			t.Errorf("the app secret is on a command line: %q", c)
		}
		if bytes.Contains(h.in[i], []byte(testSecret)) && !strings.HasPrefix(c, "debconf-set-selections") && !strings.HasPrefix(c, "debconf-communicate") {
			t.Errorf("the app secret went to %q", c)
		}
	}
	if !slices.ContainsFunc(h.in, func(b []byte) bool {
		return bytes.Contains(b, []byte("jitsi-meet-tokens jitsi-meet-tokens/appsecret password "+testSecret+"\n"))
	}) {
		t.Error("the app secret was not preseeded on debconf-set-selections' stdin")
	}
	if strings.Contains(out.String()+dry.String(), testSecret) {
		t.Error("the app secret is in the progress or dry-run output")
	}
	for _, pw := range []string{focusPassword, jvbPassword} {
		for i, c := range h.cmds {
			if strings.Contains(c, pw) || bytes.Contains(h.in[i], []byte(pw)) && !strings.HasPrefix(c, "debconf-set-selections") && !strings.HasPrefix(c, "debconf-communicate") {
				t.Errorf("an account password went to %q", c)
			}
		}
		if strings.Contains(out.String()+dry.String(), pw) {
			t.Error("an account password is in the progress or dry-run output")
		}
	}
}

// failAt runs a fresh host with one fault and checks the run stopped at
// the named step with a message containing want, and that nothing after
// that step happened.
func failAt(t *testing.T, h *fakeHost, d *spec.Deployment, step, want string) {
	t.Helper()
	var out bytes.Buffer
	_, err := Run(context.Background(), Plan(d, h.opts()), h, &out)
	var se *StepError
	if !errors.As(err, &se) || se.Step != step {
		t.Fatalf("want a failure at %q, got %v\n%s", step, err, out.String())
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if !strings.Contains(out.String(), step+": FAILED") {
		t.Errorf("progress:\n%s", out.String())
	}
	for _, c := range []string{"env DEBIAN_FRONTEND", "apply", "systemctl enable"} {
		if h.ran(c) {
			t.Errorf("after the failure, %q ran:\n%s", c, strings.Join(h.cmds, "\n"))
		}
	}
}

func TestWrongFingerprintRefused(t *testing.T) {
	d := load(t, testSpec, testSecret)
	h := newFakeHost()
	h.keyFprs["-----BEGIN PGP PUBLIC KEY BLOCK-----\njitsi\n"] = []string{"1111111111111111111111111111111111111111"}
	failAt(t, h, d, "jitsi key", "is 1111111111111111111111111111111111111111, not the pinned "+pinned)
	if len(h.files) != 0 {
		t.Errorf("files written after a refused key: %v", h.files)
	}
	// Two keys in one file, one of them the pinned one: refused too (signed-by
	// would trust both).
	h = newFakeHost()
	h.keyFprs["-----BEGIN PGP PUBLIC KEY BLOCK-----\njitsi\n"] = []string{pinned, "2222222222222222222222222222222222222222"}
	failAt(t, h, d, "jitsi key", "2 keys")
	if len(h.files) != 0 {
		t.Errorf("files written after a refused key: %v", h.files)
	}
}

func TestExistingWrongKeyringReplacedOnlyByPinnedKey(t *testing.T) {
	d := load(t, testSpec, testSecret)
	h := newFakeHost()
	h.files["/etc/apt/keyrings/jitsi.gpg"] = []byte("stale")
	h.keyFprs["stale"] = []string{"3333333333333333333333333333333333333333"}
	if _, err := Run(context.Background(), Plan(d, h.opts()), h, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if string(h.files["/etc/apt/keyrings/jitsi.gpg"]) != "binary:jitsi" {
		t.Errorf("keyring: %q", h.files["/etc/apt/keyrings/jitsi.gpg"])
	}
}

func TestBadHostStopsEarly(t *testing.T) {
	d := load(t, testSpec, testSecret)

	h := newFakeHost()
	h.locked = true
	failAt(t, h, d, "preflight", "dpkg is locked (/var/lib/dpkg/lock-frontend")
	if len(h.files) != 0 {
		t.Error("wrote files with dpkg locked")
	}

	h = newFakeHost()
	h.held = []string{"jicofo"}
	failAt(t, h, d, "preflight", "apt-mark unhold jicofo")
	if len(h.files) != 0 {
		t.Error("wrote files with a held package")
	}

	// Held and installed: the admin's version pin, left alone.
	h = newFakeHost()
	if _, err := Run(context.Background(), Plan(d, h.opts()), h, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	h.held = []string{"jicofo"}
	if res, err := Run(context.Background(), Plan(d, h.opts()), h, &bytes.Buffer{}); err != nil || len(res.Changed) != 0 {
		t.Errorf("a held, installed package must not stop a re-run: %v %v", res.Changed, err)
	}

	h = newFakeHost()
	h.repoDown = true
	failAt(t, h, d, "package lists", "Could not resolve 'download.jitsi.org'")
	if h.ran("debconf-set-selections") {
		t.Error("debconf answers set after the repository failed")
	}

	if h.secrets != 0 {
		t.Error("the agent's secrets were created by a bootstrap that stopped before the debconf step")
	}

	h = newFakeHost()
	delete(h.served, spec.DefaultJitsiKeyURL)
	failAt(t, h, d, "jitsi key", "is "+spec.DefaultJitsiKeyURL+" reachable")

	h = newFakeHost()
	failAt(t, h, load(t, testSpec, "9f3a/c71be2d40f58a6c93e17b2d84f0a65c39e71d2b8a4f"), "preflight", "jitsi-meet-tokens' postinst refuses")

	h = newFakeHost()
	o := h.opts()
	o.SpecPath = "/root/meet.hcl"
	_, err := Run(context.Background(), Plan(d, o), h, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "put the spec there") {
		t.Errorf("a spec elsewhere than the unit's: %v", err)
	}
}

func TestMissingUnitIsAnError(t *testing.T) {
	d := load(t, testSpec, testSecret)
	h := newFakeHost()
	delete(h.provides, "jicofo")
	var out bytes.Buffer
	_, err := Run(context.Background(), Plan(d, h.opts()), h, &out)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "verify" || !strings.Contains(err.Error(), "jicofo.service is not installed") {
		t.Fatalf("want verify to fail on jicofo.service, got %v\n%s", err, out.String())
	}
}

func TestPackagesPerRole(t *testing.T) {
	d := load(t, `domain = "meet.example.com"
cluster_secret = "9f3ac71be2d40f58a6c93e17b2d84f0a65c39e71d2b8a4f6"
host "web" {
  roles   = ["prosody", "jicofo", "nginx"]
  address = "10.0.0.1"
}
host "jvb1" {
  roles   = ["jvb"]
  address = "10.0.0.2"
}
auth "anonymous" {}
firewall {}
`, "")
	if got := Packages(d); !slices.Equal(got, []string{"prosody", "jitsi-meet-prosody", "jicofo", "nginx", "jitsi-meet-web", "nftables"}) {
		t.Errorf("web host packages: %v", got)
	}
	if got := Units(d); !slices.Equal(got, []string{"prosody.service", "jicofo.service", "nginx.service"}) {
		t.Errorf("web host units: %v", got)
	}
	for _, s := range Selections(d) {
		if strings.HasPrefix(s.Question, "jitsi-meet-tokens/") {
			t.Errorf("anonymous auth preseeds %s", s.Question)
		}
	}
}

func TestDryRunListsEverything(t *testing.T) {
	d := load(t, testSpec, testSecret)
	var b bytes.Buffer
	PrintPlan(&b, Plan(d, Options{SpecPath: DaemonSpec}))
	for _, want := range []string{"1. preflight", pinned, "deb [signed-by=/etc/apt/keyrings/jitsi.gpg] https://download.jitsi.org stable/", "jitsi-meet-tokens/appsecret", "jitsi-videobridge2", "systemctl enable --now jitsi-agent.service"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, b.String())
		}
	}
}

// The real lock check sees a lock another open file description holds
// (as apt's F_SETLK from another process would be seen).
func TestSystemDpkgLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock-frontend")
	if err := os.WriteFile(p, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	s := &System{Locks: []string{filepath.Join(t.TempDir(), "absent"), p}}
	if _, locked, err := s.DpkgLock(); err != nil || locked {
		t.Fatalf("unlocked file: locked=%v err=%v", locked, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	const fOFDSetLK = 37 // F_OFD_SETLK: a lock owned by the file description, seen by F_GETLK in this process too
	if err := syscall.FcntlFlock(f.Fd(), fOFDSetLK, &lk); err != nil {
		t.Fatal(err)
	}
	if path, locked, err := s.DpkgLock(); err != nil || !locked || path != p {
		t.Fatalf("locked file: %q locked=%v err=%v", path, locked, err)
	}
}

func TestSystemFetchBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxFetch+1), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &System{}
	if _, err := s.Fetch(context.Background(), "file://"+big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized key: %v", err)
	}
	if _, err := s.Fetch(context.Background(), "ftp://x/key"); err == nil {
		t.Error("ftp accepted")
	}
}
