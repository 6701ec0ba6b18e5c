package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// agentBinary builds the real binary once per test process (whole-process
// benchmarks measure what a sysadmin or cloud-init actually runs).
func agentBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jitsi-agent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "jitsi-agent")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			tb.Logf("%s", out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("build: %v", buildErr)
	}
	return binPath
}

// BenchmarkRenderProcess: whole-process `jitsi-agent render` of the largest
// example (target: under 20 ms).
func BenchmarkRenderProcess(b *testing.B) {
	bin := agentBinary(b)
	out := b.TempDir()
	spec, _ := filepath.Abs("../../examples/meet.hcl")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "render", spec, "--out", out, "-q")
		cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, o)
		}
	}
}

// BenchmarkValidateProcess: whole-process `jitsi-agent validate`.
func BenchmarkValidateProcess(b *testing.B) {
	bin := agentBinary(b)
	spec, _ := filepath.Abs("../../examples/meet.hcl")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "validate", spec)
		cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, o)
		}
	}
}

// appliedRoot applies the example once under a fresh root (no systemd) and
// returns it: an up-to-date host for the plan / no-op apply benchmarks.
func appliedRoot(b *testing.B, bin, spec string) string {
	root := b.TempDir()
	cmd := exec.Command(bin, "apply", spec, "--root", root, "-q")
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, o)
	}
	return root
}

// BenchmarkPlanProcess: whole-process `jitsi-agent plan` of the largest
// example on an up-to-date host (target: under 20 ms).
func BenchmarkPlanProcess(b *testing.B) {
	bin := agentBinary(b)
	spec, _ := filepath.Abs("../../examples/meet.hcl")
	root := appliedRoot(b, bin, spec)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "plan", spec, "--root", root)
		cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("plan not clean: %v: %s", err, o)
		}
	}
}

// BenchmarkApplyNoopProcess: whole-process `jitsi-agent apply` on an
// up-to-date host (target: under 25 ms, zero writes).
func BenchmarkApplyNoopProcess(b *testing.B) {
	bin := agentBinary(b)
	spec, _ := filepath.Abs("../../examples/meet.hcl")
	root := appliedRoot(b, bin, spec)
	conf := filepath.Join(root, "etc/prosody/conf.avail/meet.example.com.cfg.lua")
	before, err := os.Stat(conf)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "apply", spec, "--root", root, "-q")
		cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, o)
		}
	}
	b.StopTimer()
	after, _ := os.Stat(conf)
	if !after.ModTime().Equal(before.ModTime()) {
		b.Fatal("a no-op apply rewrote a file")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	pebbletest.Cleanup()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
