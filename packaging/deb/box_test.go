package deb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/systembox"
)

// TestPackageLifecycleInBox installs the .deb with apt as the README says,
// in a systemd box (overlays: the host's dpkg database is never written),
// and checks what the maintainer scripts promise: state directory 0700,
// the unit known to systemd but neither enabled nor started, no start
// without a spec, `remove` keeps the state, `purge` says so and deletes it.
func TestPackageLifecycleInBox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package and boots systemd")
	}
	systembox.Require(t)
	dist, names := release(t)
	var deb string
	for _, n := range names {
		if strings.HasSuffix(n, "_amd64.deb") {
			deb = n
		}
	}
	stage := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dist, deb))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, deb), b, 0o644); err != nil {
		t.Fatal(err)
	}
	box := systembox.Boot(t, stage)
	sh := func(script string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return box.Run(ctx, "sh", "-c", script)
	}
	must := func(script string) string {
		t.Helper()
		out, err := sh(script)
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(out)
	}

	must("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + systembox.StageDir + "/" + deb)
	if got := must("stat -c '%a %U' /var/lib/jitsi-agent"); got != "700 root" {
		t.Errorf("state directory: %q, want 700 root", got)
	}
	if got := must("/usr/bin/jitsi-agent version"); !strings.Contains(got, "jitsi-agent") {
		t.Errorf("jitsi-agent version: %q", got)
	}
	if got := must("systemctl show -p FragmentPath -p UnitFileState -p ActiveState jitsi-agent.service"); !strings.Contains(got, "FragmentPath=/lib/systemd/system/jitsi-agent.service") ||
		!strings.Contains(got, "UnitFileState=disabled") || !strings.Contains(got, "ActiveState=inactive") {
		t.Errorf("after install the unit must be known, disabled and inactive:\n%s", got)
	}
	// No spec: starting is a no-op (the condition fails), not a crash loop.
	must("systemctl start jitsi-agent.service")
	if got := must("systemctl show -p ConditionResult -p ActiveState -p NRestarts jitsi-agent.service"); !strings.Contains(got, "ConditionResult=no") || !strings.Contains(got, "ActiveState=inactive") {
		t.Errorf("without /etc/jitsi-agent/meet.hcl the daemon must not start:\n%s", got)
	}

	must("echo kept > /var/lib/jitsi-agent/marker && DEBIAN_FRONTEND=noninteractive apt-get remove -y -q jitsi-agent")
	if out, err := sh("test ! -e /usr/bin/jitsi-agent && cat /var/lib/jitsi-agent/marker"); err != nil || strings.TrimSpace(out) != "kept" {
		t.Errorf("remove must delete the binary and keep the state: %v %q", err, out)
	}
	out := must("dpkg --purge jitsi-agent 2>&1")
	if !strings.Contains(out, "removing /var/lib/jitsi-agent") {
		t.Errorf("purge must say it deletes the state directory:\n%s", out)
	}
	if _, err := sh("test ! -e /var/lib/jitsi-agent"); err != nil {
		t.Error("purge left /var/lib/jitsi-agent")
	}
}
