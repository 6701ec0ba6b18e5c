// Package testenv decides whether tests that need a real component (Prosody,
// nginx, Java, node, coturn, systemd, root) run, skip, or fail.
//
// On a laptop without a component its tests skip with the reason and the
// install command. With JITSI_AGENT_REQUIRE_REAL=1 (set by .ci/run) any such
// skip is a failure, so CI cannot go green by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRealEnv is the variable .ci/run sets.
const RequireRealEnv = "JITSI_AGENT_REQUIRE_REAL"

// Strict reports whether missing components are failures.
func Strict() bool { return os.Getenv(RequireRealEnv) == "1" }

// Unavailable skips the test (or fails it under JITSI_AGENT_REQUIRE_REAL=1)
// with the reason and how to install what is missing.
func Unavailable(t testing.TB, reason, install string) {
	t.Helper()
	msg := reason + " (install: " + install + ")"
	if Strict() {
		t.Fatalf("%s is required with %s=1: %s", t.Name(), RequireRealEnv, msg)
	}
	t.Skip(msg)
}

// LookPath returns the path of a tool, or skips/fails the test.
func LookPath(t testing.TB, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
			if _, e := os.Stat(dir + "/" + tool); e == nil {
				return dir + "/" + tool
			}
		}
		Unavailable(t, tool+" not found in PATH", install)
	}
	return p
}

// File returns path if it exists, or skips/fails the test.
func File(t testing.TB, path, install string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Unavailable(t, path+" not found", install)
	}
	return path
}

// Root skips/fails unless running as root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root: "+why, "run the tests as root, as CI does")
	}
}
