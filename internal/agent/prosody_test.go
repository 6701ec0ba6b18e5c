package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

// modelProsody is a running Prosody in memory: config:reload() reads the
// config file under root; activated hosts load the modules the config names;
// the state dump reports them; every command is recorded.
type modelProsody struct {
	mu     sync.Mutex
	root   string
	conf   *prosody.Model
	hosts  map[string][]string
	log    []string
	broken map[string]bool // modules that never load
}

func (m *modelProsody) readConf() {
	b, err := os.ReadFile(filepath.Join(m.root, prosodyConf))
	if err == nil {
		m.conf, _ = prosody.ModelOf(b)
	}
}

// start is a (re)start: every configured host active with its modules.
func (m *modelProsody) start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readConf()
	m.hosts = map[string][]string{"localhost": {"ping"}}
	for _, n := range m.conf.Names {
		m.hosts[n] = m.loadable(m.conf.Hosts[n].Modules)
	}
}

func (m *modelProsody) loadable(mods []string) []string {
	var out []string
	for _, x := range mods {
		if !m.broken[x] {
			out = append(out, x)
		}
	}
	return out
}

func (m *modelProsody) Run(_ context.Context, cmd string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = append(m.log, cmd)
	var a, b string
	switch {
	case cmd == "config:reload()":
		m.readConf()
		return "OK: Config reloaded", nil
	case strings.HasPrefix(cmd, "> "):
		var out []string
		for h, mods := range m.hosts {
			out = append(out, "jitsi-agent-host "+h+" "+strings.Join(mods, ","))
		}
		return strings.Join(out, "\n") + "\nResult: nil", nil
	case scan(cmd, "host:activate(%q)", &a):
		m.hosts[a] = m.loadable(m.conf.Hosts[a].Modules)
		return "Result: true", nil
	case scan(cmd, "host:deactivate(%q)", &a):
		delete(m.hosts, a)
		return "Result: true", nil
	case scan(cmd, "module:load(%q, %q)", &a, &b):
		if m.broken[a] {
			return "Error: Last error: not found", fmt.Errorf("exit status 1")
		}
		m.hosts[b] = append(m.hosts[b], a)
		return "OK: Module loaded onto 1 host", nil
	case scan(cmd, "module:unload(%q, %q)", &a, &b):
		m.hosts[b] = slices.DeleteFunc(m.hosts[b], func(x string) bool { return x == a })
		return "OK", nil
	case scan(cmd, "module:reload(%q, %q)", &a, &b):
		return "OK: Module reloaded on 1 host", nil
	}
	return "", fmt.Errorf("unexpected %q", cmd)
}

func scan(s, f string, args ...*string) bool {
	ptrs := make([]any, len(args))
	for i := range args {
		ptrs[i] = args[i]
	}
	_, err := fmt.Sscanf(s, f, ptrs...)
	return err == nil
}

func (m *modelProsody) take() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := strings.Join(m.log, "\n")
	m.log = nil
	return s
}

// A unit "restart" of prosody.service starts the model afresh.
type restartingUnits struct {
	*fakeUnits
	p *modelProsody
}

func (u restartingUnits) Restart(ctx context.Context, unit string) error {
	if unit == "prosody.service" {
		u.p.start()
	}
	return u.fakeUnits.Restart(ctx, unit)
}

func (u restartingUnits) Start(ctx context.Context, unit string) error {
	if unit == "prosody.service" {
		u.p.start()
	}
	return u.fakeUnits.Start(ctx, unit)
}

func TestProsodyLiveChanges(t *testing.T) {
	f := newFixture(t)
	p := &modelProsody{root: f.root, broken: map[string]bool{}}
	// Prosody is running (as after apt-get install) before the first apply.
	f.units.state["prosody.service"] = "active"
	p.conf = &prosody.Model{Hosts: map[string]*prosody.Host{}}
	p.hosts = map[string][]string{"localhost": {"ping"}}
	f.env.Units = func(context.Context) (systemd.Units, error) { return restartingUnits{f.units, p}, nil }
	f.env.Prosody = p

	// Fresh host: plugin_paths is only read at start, so the first apply
	// restarts Prosody instead of reloading it, then checks the hosts.
	if _, err := f.apply(ApplyOptions{Always: true}); err != nil {
		t.Fatal(err)
	}
	if calls := f.units.take(); !slices.Contains(calls, "restart prosody.service") || slices.Contains(calls, "reload prosody.service") {
		t.Fatalf("first apply: %v", calls)
	}
	if log := p.take(); !strings.HasPrefix(log, "> ") {
		t.Fatalf("after the restart the live server is checked: %q", log)
	}

	// max_participants: plan says live; apply reloads one module, no restart.
	f.writeSpec(2)
	d := f.load()
	set, err := DesiredStateReadOnly(d, f.root, f.env.now())
	if err != nil {
		t.Fatal(err)
	}
	le, err := ProsodyEffect(d, set, f.root)
	if err != nil || le == nil || le.Effect != "live" || !strings.Contains(strings.Join(le.Steps, "\n"), "module-reload muc_max_occupants on conference.meet.example.com") {
		t.Fatalf("plan effect: %+v %v", le, err)
	}
	if _, err := f.apply(ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if calls := f.units.take(); !slices.Contains(calls, "reload prosody.service") || slices.Contains(calls, "restart prosody.service") {
		t.Fatalf("max_participants: %v", calls)
	}
	log := p.take()
	if !strings.Contains(log, `module:reload("muc_max_occupants", "conference.meet.example.com")`) || strings.Contains(log, "activate") {
		t.Fatalf("max_participants shell steps:\n%s", log)
	}

	// A module that does not load: apply fails and says which.
	p.broken["muc_max_occupants"] = true
	p.mu.Lock()
	p.hosts["conference.meet.example.com"] = slices.DeleteFunc(p.hosts["conference.meet.example.com"], func(x string) bool { return x == "muc_max_occupants" })
	p.mu.Unlock()
	f.writeSpec(3)
	_, err = f.apply(ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "muc_max_occupants") || !IsRollback(err) {
		t.Fatalf("a module that cannot load must fail the apply naming it, and roll back: %v", err)
	}
	if conf := string(f.file(prosodyConf)); !strings.Contains(conf, "muc_max_occupants = 2") {
		t.Errorf("the Prosody config was not rolled back:\n%s", conf)
	}
}
