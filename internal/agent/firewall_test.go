package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// netnsNft is nft inside a network namespace the test made: the test
// machine's own ruleset is never touched.
func netnsNft(t *testing.T) firewall.Nft {
	t.Helper()
	testenv.Root(t, "network namespaces for the nftables tests")
	testenv.LookPath(t, "ip", "apt-get install iproute2")
	nft := testenv.LookPath(t, "nft", "apt-get install nftables")
	ns := fmt.Sprintf("jaagent-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	if len(ns) > 60 {
		ns = ns[:60]
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	return firewall.Nft{Argv: []string{"ip", "netns", "exec", ns, nft}}
}

func liveTable(t *testing.T, n firewall.Nft) string {
	t.Helper()
	s, ok, err := n.Table(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return s
}

const firewallSpec = testSpec + `firewall {
  ssh_port = %d
}
`

func (f *fixture) writeFirewallSpec(max, ssh int) {
	f.t.Helper()
	if err := os.WriteFile(f.spec, fmt.Appendf(nil, firewallSpec, max, ssh), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// The ruleset is a managed file and a live table: written and loaded by one
// apply, left alone by the next, and rolled back with the files when a unit
// fails.
func TestApplyFirewallWithFilesAndRollback(t *testing.T) {
	f := newFixture(t)
	nft := netnsNft(t)
	f.env.Firewall = &Firewall{Nft: nft}
	f.writeFirewallSpec(50, 22)
	res, err := f.apply(ApplyOptions{Always: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Firewall == nil || res.Firewall.Action != firewall.ActionApplied {
		t.Fatalf("firewall: %+v", res.Firewall)
	}
	want, err := firewall.Script(f.load())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.file(firewall.Path), want) || !bytes.Contains(want, []byte("tcp dport 443 accept")) {
		t.Fatalf("ruleset file is not the rendered ruleset:\n%s", f.file(firewall.Path))
	}
	live := liveTable(t, nft)
	if !strings.Contains(live, "tcp dport 22 accept") || !strings.Contains(live, "tcp dport 443 accept") {
		t.Fatalf("live table:\n%s", live)
	}
	res, err = f.apply(ApplyOptions{})
	if err != nil || res.Files.Changed() || res.Firewall.Action != firewall.ActionUnchanged {
		t.Fatalf("second apply: %+v %v", res.Firewall, err)
	}

	// SSH moves and Prosody's config changes; Prosody fails to reload:
	// the files and the live table go back together.
	f.units.take()
	beforeFile := f.file(firewall.Path)
	f.writeFirewallSpec(40, 2222)
	f.units.failOn["prosody.service"] = true
	_, err = f.apply(ApplyOptions{})
	if !IsCleanRollback(err) {
		t.Fatalf("want a clean rollback, got %v", err)
	}
	if got := liveTable(t, nft); got != live {
		t.Fatalf("live table not rolled back:\n%s\nwant:\n%s", got, live)
	}
	if !bytes.Equal(f.file(firewall.Path), beforeFile) {
		t.Fatal("ruleset file not rolled back")
	}
}

// rejecting is nft whose check refuses everything.
type rejecting struct{ firewall.Nft }

func (rejecting) Check(context.Context, []byte) error { return errors.New("Error: syntax error") }

// A ruleset nft -c rejects changes nothing: no file is written, the live
// table stays as it was.
func TestApplyFirewallRejectedChangesNothing(t *testing.T) {
	f := newFixture(t)
	nft := netnsNft(t)
	f.env.Firewall = &Firewall{Nft: rejecting{nft}}
	f.writeFirewallSpec(50, 22)
	res, err := f.apply(ApplyOptions{Always: true})
	var ce *apply.CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nft -c") {
		t.Fatalf("err = %v, want a check error naming nft -c", err)
	}
	if res.Files != nil {
		t.Fatal("files were applied")
	}
	if _, err := os.Stat(f.root + prosodyConf); err == nil {
		t.Fatal("a file was written")
	}
	if liveTable(t, nft) != "" {
		t.Fatal("a table was loaded")
	}
}

// The daemon restores a hand-edited or flushed table and reports it as drift.
func TestDaemonRestoresFirewallDrift(t *testing.T) {
	f := newFixture(t)
	nft := netnsNft(t)
	f.env.Firewall = &Firewall{Nft: nft}
	f.writeFirewallSpec(50, 22)
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Apply(ctx, daemon.Request{Initial: true}); err != nil {
		t.Fatal(err)
	}
	want := liveTable(t, nft)
	for _, edit := range []string{"add rule inet jitsi_agent input tcp dport 5222 accept\n", "flush ruleset\n"} {
		if err := nft.Load(ctx, []byte(edit)); err != nil {
			t.Fatal(err)
		}
		out, err := a.Apply(ctx, daemon.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Drift) != 1 || out.Drift[0].Path != FirewallDriftPath || !out.Drift[0].Restored {
			t.Fatalf("after %q: drift %+v", edit, out.Drift)
		}
		if got := liveTable(t, nft); got != want {
			t.Fatalf("after %q: not restored:\n%s", edit, got)
		}
	}
	out, err := a.Apply(ctx, daemon.Request{})
	if err != nil || len(out.Drift) != 0 {
		t.Fatalf("quiet pass: %+v %v", out.Drift, err)
	}
}

// A ruleset that would close the port sshd listens on is refused before
// anything changes; the same spec with the right port goes through.
func TestApplyFirewallRefusesSSHLockout(t *testing.T) {
	f := newFixture(t)
	nft := netnsNft(t)
	f.env.Firewall = &Firewall{Nft: nft, SSHPorts: func(context.Context) ([]int, error) { return []int{2222}, nil }}
	f.writeFirewallSpec(50, 22)
	_, err := f.apply(ApplyOptions{Always: true})
	var ce *apply.CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "sshd listens on 2222/tcp") || !strings.Contains(err.Error(), "ssh_port = 2222") {
		t.Fatalf("err = %v, want the lock-out refusal", err)
	}
	if liveTable(t, nft) != "" {
		t.Fatal("a table was loaded")
	}
	if _, err := os.Stat(f.root + prosodyConf); err == nil {
		t.Fatal("a file was written")
	}
	f.writeFirewallSpec(50, 2222)
	if _, err := f.apply(ApplyOptions{Always: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(liveTable(t, nft), "tcp dport 2222 accept") {
		t.Fatal("ssh port 2222 not in the live table")
	}
}

// Between passes the daemon polls the live table: a flush asks for a pass.
func TestDaemonPollsFirewall(t *testing.T) {
	f := newFixture(t)
	nft := netnsNft(t)
	f.env.Firewall = &Firewall{Nft: nft}
	f.writeFirewallSpec(50, 22)
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true, FirewallPoll: 50 * time.Millisecond})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Apply(ctx, daemon.Request{Initial: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-a.Triggers():
		t.Fatalf("trigger %q while the table is in sync", r)
	case <-time.After(300 * time.Millisecond):
	}
	if err := nft.Load(ctx, []byte("flush ruleset\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-a.Triggers():
		if r != "firewall" {
			t.Fatalf("trigger %q", r)
		}
	case <-time.After(30 * time.Second): // each poll runs nft: slow on a loaded machine
		t.Fatal("no trigger 30 s after the table was flushed")
	}
	if out, err := a.Apply(ctx, daemon.Request{Reason: "firewall"}); err != nil || len(out.Drift) != 1 || !out.Drift[0].Restored {
		t.Fatalf("restore pass: %+v %v", out.Drift, err)
	}
}

// A rollback through the daemon puts the previous table back in the kernel,
// not only its file.
func TestDaemonRollbackLoadsFirewall(t *testing.T) {
	f := newFixture(t)
	nft := netnsNft(t)
	f.env.Firewall = &Firewall{Nft: nft}
	f.writeFirewallSpec(50, 22)
	a := NewDaemon(DaemonConfig{Spec: f.spec, Root: f.root, Env: f.env, NoJoinAPI: true})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Apply(ctx, daemon.Request{Initial: true}); err != nil {
		t.Fatal(err)
	}
	before := liveTable(t, nft)
	f.writeFirewallSpec(50, 2222)
	if _, err := a.Apply(ctx, daemon.Request{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(liveTable(t, nft), "tcp dport 2222 accept") {
		t.Fatal("2222 not live")
	}
	if _, err := a.Rollback(ctx, apply.Previous); err != nil {
		t.Fatal(err)
	}
	if got := liveTable(t, nft); got != before {
		t.Fatalf("live table after rollback:\n%s\nwant:\n%s", got, before)
	}
}
