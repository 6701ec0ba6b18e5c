package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs/pebbletest"
	"github.com/jitsi-agent/jitsi-agent/internal/stamp"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// agentBinary builds the programs once per test process, as `make build`
// lays them out in one directory: jitsi-agent (the launcher,
// cmd/jitsi-agent-launcher), jitsi-agent-full (this package) and
// jitsi-agent-import. It returns jitsi-agent's path: whole-process tests
// and benchmarks run what a sysadmin or cloud-init actually runs.
func agentBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jitsi-agent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "jitsi-agent")
		for out, pkg := range map[string]string{"jitsi-agent": "../jitsi-agent-launcher", "jitsi-agent-full": ".", "jitsi-agent-import": "../jitsi-agent-import"} {
			// As `make build` builds them (static, trimmed).
			cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, out), pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if o, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, o)
				return
			}
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// fullBinary is jitsi-agent-full, next to agentBinary's launcher.
func fullBinary(tb testing.TB) string {
	return filepath.Join(filepath.Dir(agentBinary(tb)), "jitsi-agent-full")
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

// BenchmarkValidateTemplatesProcess: whole-process `jitsi-agent validate`
// (load, validate and render in memory) of a spec with many templates
// sharing one source. Reported per run: the process's CPU time (user +
// system: wall time on a shared machine says little) and its peak RSS
// (targets for 100,000 templates: 10 s and 300 MB).
func BenchmarkValidateTemplatesProcess(b *testing.B) {
	bin := agentBinary(b)
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("DOMAIN={{ .Domain }}\n"), 0o600); err != nil {
				b.Fatal(err)
			}
			var sb strings.Builder
			sb.WriteString("domain = \"meet.example.com\"\nauth \"anonymous\" {}\n")
			for i := 0; i < n; i++ {
				fmt.Fprintf(&sb, "template \"t%d\" {\n  source      = \"t.tmpl\"\n  destination = \"/srv/app/d%d/f%d.conf\"\n  mode        = \"0640\"\n}\n", i, i%100, i)
			}
			spec := filepath.Join(dir, "spec.hcl")
			if err := os.WriteFile(spec, []byte(sb.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			var cpu time.Duration
			var peak int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(bin, "validate", spec)
				if o, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, o)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					peak = max(peak, ru.Maxrss) // KiB on Linux
				}
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			if peak > 0 {
				b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
			}
		})
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
	// The example spec's token_api key, for every command and daemon the
	// tests run on it (JITSI_APP_SECRET is set per test).
	os.Setenv("JOIN_API_KEY", cliAPIKey)
	code := m.Run()
	pebbletest.Cleanup()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// BenchmarkApplyNoopVsConsulTemplate compares, in alternating runs on the
// same machine, a whole-process no-op `jitsi-agent apply` of the example
// with consul-template v0.42 (a tool dependency in go.mod) rendering six
// static 5 KB templates with -once. It reports both medians and their
// ratio (target: ratio <= 0.5) and `jitsi-agent version` (target: 3 ms).
func BenchmarkApplyNoopVsConsulTemplate(b *testing.B) {
	ct := testenv.LookPath(b, "consul-template", "cd $(git rev-parse --show-toplevel) && go build -o .ci/bin/ tool && export PATH=$PWD/.ci/bin:$PATH")
	bin := agentBinary(b)
	spec, _ := filepath.Abs("../../examples/meet.hcl")
	root := appliedRoot(b, bin, spec)
	dir := b.TempDir()
	ctArgs := []string{"-once"}
	for i := range 6 {
		var t strings.Builder
		for n := 0; t.Len() < 5<<10; n++ {
			fmt.Fprintf(&t, "key_%d = %q\n", n, strings.Repeat(string(rune('a'+(n+i)%26)), 40))
		}
		src := filepath.Join(dir, fmt.Sprintf("t%d.tmpl", i))
		if err := os.WriteFile(src, []byte(t.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		ctArgs = append(ctArgs, "-template", src+":"+filepath.Join(dir, "out", fmt.Sprintf("t%d", i)))
	}
	// timed runs one process; it returns the wall time and the CPU time
	// (user + system), which a loaded machine distorts less.
	timed := func(name string, args ...string) (wall, cpu time.Duration) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
		start := time.Now()
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v: %s", name, args, err, o)
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	timed(ct, ctArgs...) // first run creates the outputs
	var agent, tmpl, version, agentCPU, tmplCPU, versionCPU []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, c := timed(bin, "apply", spec, "--root", root, "-q")
		agent, agentCPU = append(agent, w), append(agentCPU, c)
		w, c = timed(ct, ctArgs...)
		tmpl, tmplCPU = append(tmpl, w), append(tmplCPU, c)
		w, c = timed(bin, "version")
		version, versionCPU = append(version, w), append(versionCPU, c)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(median(agent)), "apply-ms")
	b.ReportMetric(ms(median(tmpl)), "consul-template-ms")
	b.ReportMetric(float64(median(agent))/float64(median(tmpl)), "ratio")
	b.ReportMetric(ms(median(version)), "version-ms")
	b.ReportMetric(ms(median(agentCPU)), "apply-cpu-ms")
	b.ReportMetric(ms(median(tmplCPU)), "consul-template-cpu-ms")
	b.ReportMetric(ms(median(versionCPU)), "version-cpu-ms")
	b.ReportMetric(float64(median(agentCPU))/float64(median(tmplCPU)), "cpu-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLauncherHop measures what the launcher adds to the commands it
// hands to jitsi-agent-full: alternating runs of a full (no stamp) no-op
// `apply -root` of the example through jitsi-agent and straight with
// jitsi-agent-full. It reports both medians (wall and CPU) and the
// difference of the CPU medians.
func BenchmarkLauncherHop(b *testing.B) {
	bin, full := agentBinary(b), fullBinary(b)
	spec, _ := filepath.Abs("../../examples/meet.hcl")
	root := appliedRoot(b, bin, spec)
	stampFile := filepath.Join(root, "var/lib/jitsi-agent", stamp.Name)
	timed := func(name string) (wall, cpu time.Duration) {
		// No stamp: the whole load, render, plan and apply run.
		if err := os.Remove(stampFile); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		cmd := exec.Command(name, "apply", spec, "--root", root, "-q")
		cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret)
		start := time.Now()
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", name, err, o)
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var via, direct, viaCPU, directCPU []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, c := timed(bin)
		via, viaCPU = append(via, w), append(viaCPU, c)
		w, c = timed(full)
		direct, directCPU = append(direct, w), append(directCPU, c)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(median(via)), "launcher-ms")
	b.ReportMetric(ms(median(direct)), "direct-ms")
	b.ReportMetric(ms(median(viaCPU)), "launcher-cpu-ms")
	b.ReportMetric(ms(median(directCPU)), "direct-cpu-ms")
	b.ReportMetric(ms(median(viaCPU)-median(directCPU)), "hop-cpu-ms")
	b.ReportMetric(0, "ns/op")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
