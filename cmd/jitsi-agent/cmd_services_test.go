package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
)

func TestServicesWithoutSystemd(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	code, out, errs := runCLI(t, "services", "../../examples/meet.hcl")
	if code != exitError || !strings.Contains(errs, "systemd is not available") || !strings.Contains(out, "jicofo.service") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func TestServicesShowsDeferred(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	root := t.TempDir()
	// examples/meet.hcl keeps its state in the default /var/lib/jitsi-agent.
	path := deferred.Path(filepath.Join(root, "var/lib/jitsi-agent"))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	b, _ := json.Marshal(map[string]any{"version": 1, "units": []deferred.Restart{{Unit: "jicofo.service", Component: "jicofo", Since: since}}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "services", "../../examples/meet.hcl", "--root", root)
	if code != exitChanges || !strings.Contains(out, "jicofo.service (jicofo) pending since 2026-11-25T20:00:00Z") || !strings.Contains(out, "--restart-deferred") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
