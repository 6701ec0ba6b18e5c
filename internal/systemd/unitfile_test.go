package systemd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const unitFile = "../../systemd/jitsi-agent.service"

// verifiableCopy writes the unit with ExecStart pointing at an existing
// binary (verify checks that the command exists) into a temp dir.
func verifiableCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "ExecStart=/usr/local/bin/jitsi-agent ", "ExecStart=/bin/true ", 1)
	if s == string(b) {
		t.Fatal("ExecStart=/usr/local/bin/jitsi-agent not found in the unit")
	}
	p := filepath.Join(t.TempDir(), "jitsi-agent.service")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnitFileVerify(t *testing.T) {
	sa := testenv.LookPath(t, "systemd-analyze", "apt-get install systemd")
	p := verifiableCopy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sa, "verify", "--man=no", p)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	// verify exits 0 even for unknown keys or an unparsable Type=: any
	// output is a finding.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestUnitFileSecurityScore(t *testing.T) {
	sa := testenv.LookPath(t, "systemd-analyze", "apt-get install systemd")
	p := verifiableCopy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "security", "--offline=yes", "--no-pager", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no score in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline: %.1f", score)
	// The hardening must not silently regress ("OK" is below 4.0 on
	// systemd's scale; the unit scores 2.6 on systemd 252).
	if score > 3.0 {
		t.Fatalf("exposure %.1f > 3.0:\n%s", score, out)
	}
}

func TestUnitFileContract(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"\nType=notify\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", "\nWatchdogSec=", "\nNotifyAccess=main\n",
		"\nProtectSystem=strict\n", "\nReadWritePaths=", "\nNoNewPrivileges=yes\n", "\nCapabilityBoundingSet=",
		"\nStateDirectory=jitsi-agent\n", "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
		"\nSystemCallFilter=@system-service\n", "\nProtectHome=yes\n", "\nPrivateTmp=yes\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "CapabilityBoundingSet=") {
			// CAP_NET_ADMIN stays: nft loads the firewall table.
			for _, bad := range []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_KILL"} {
				if strings.Contains(l, bad) {
					t.Errorf("capability %s is not needed", bad)
				}
			}
		}
	}
}
