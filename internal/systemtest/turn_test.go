package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// turnOff is DefaultSpec with TURN turned off.
func turnOff(domain string) string {
	on := "turn {\n  relay_min_port = 49160\n  relay_max_port = 49200\n}"
	s := DefaultSpec(domain)
	if !strings.Contains(s, on) {
		panic("DefaultSpec changed: update turnOff")
	}
	return strings.Replace(s, on, "turn {\n  enabled = false\n}", 1)
}

// unitState is `systemctl is-active` and `is-enabled` of a unit.
func (e *Env) unitState(unit string) (active, enabled string) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, _ := e.Exec(ctx, "systemctl", "is-active", unit)
	en, _ := e.Exec(ctx, "systemctl", "is-enabled", unit)
	return strings.TrimSpace(a), strings.TrimSpace(en)
}

// turnCredentials logs in through nginx and asks Prosody for TURN
// credentials (XEP-0215).
func (e *Env) turnCredentials(ctx context.Context) *xmpptest.Service {
	e.T.Helper()
	c, err := e.BOSH(ctx, e.Domain, e.Token("room1"))
	if err != nil {
		e.T.Fatalf("BOSH login: %v", err)
	}
	defer c.Close()
	svcs, err := c.ExternalServices(ctx)
	if err != nil {
		e.T.Fatalf("XEP-0215: %v", err)
	}
	for i := range svcs {
		if svcs[i].Type == "turn" && svcs[i].Transport == "udp" && svcs[i].Username != "" {
			return &svcs[i]
		}
	}
	e.T.Fatalf("no TURN credentials from Prosody: %+v", svcs)
	return nil
}

// allocate asks the box's coturn for a relay with the credentials.
func (e *Env) allocate(ctx context.Context, turn *xmpptest.Service) (string, error) {
	return e.Exec(ctx, "turnutils_uclient", "-v", "-u", turn.Username, "-w", turn.Password, "-n", "1", "-X", "-c",
		"-p", "3478", "-e", TURNAddr, TURNAddr)
}

// TURN follows the spec, from the component table: with TURN off coturn
// is neither started nor enabled; turned on, it runs (enabled) and a real
// allocation with Prosody's credentials works; turned off again, the
// coturn the agent ran is stopped and disabled.
func TestTURNFollowsTheSpec(t *testing.T) {
	e := Boot(t, Options{Spec: turnOff("meet.test"), NoStart: true})
	out := e.Apply()
	if a, en := e.unitState("coturn.service"); a == "active" || en == "enabled" {
		t.Fatalf("TURN off: coturn is %s/%s after apply:\n%s", a, en, out)
	}
	if a, _ := e.unitState("prosody.service"); a != "active" {
		t.Fatalf("prosody is %s after apply:\n%s", a, out)
	}

	e.SetSpec(DefaultSpec(e.Domain))
	out = e.Apply()
	if a, en := e.unitState("coturn.service"); a != "active" || en != "enabled" {
		t.Fatalf("TURN on: coturn is %s/%s after apply:\n%s", a, en, out)
	}
	ctx := ctxT(t, 2*time.Minute)
	creds := e.turnCredentials(ctx)
	// An allocation is "Received relay addr"; coturn then refuses the
	// channel bind to a private peer (denied-peer-ip), which is expected.
	if alloc, err := e.allocate(ctx, creds); !strings.Contains(alloc, "Received relay addr") {
		t.Fatalf("TURN on: no allocation with Prosody's credentials (%v):\n%s", err, alloc)
	}

	e.SetSpec(turnOff(e.Domain))
	out = e.Apply()
	if !strings.Contains(out, "coturn.service") {
		t.Errorf("apply does not say what it did to coturn:\n%s", out)
	}
	if a, en := e.unitState("coturn.service"); a == "active" || en == "enabled" {
		t.Fatalf("TURN off again: coturn is %s/%s after apply:\n%s", a, en, out)
	}
	if alloc, _ := e.allocate(ctx, creds); strings.Contains(alloc, "Received relay addr") {
		t.Fatalf("TURN off again: still allocating:\n%s", alloc)
	}
	// The administrator starts coturn by hand: it is not the agent's any
	// more, and a later apply with a change leaves it running.
	e.MustRun("systemctl", "start", "coturn.service")
	e.SetSpec(strings.Replace(turnOff(e.Domain), "max_participants = 10", "max_participants = 11", 1))
	out = e.Apply()
	if a, _ := e.unitState("coturn.service"); a != "active" {
		t.Fatalf("apply stopped a coturn the agent no longer runs (%s):\n%s", a, out)
	}
}
