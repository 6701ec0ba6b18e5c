package fleet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
	"github.com/jitsi-agent/jitsi-agent/internal/fleet"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore/etcdtest"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// BenchmarkConverge: N in-process agents (one signalling host, N-1
// bridges in one wave: --max-unavailable N), each applying to its own
// root, on a real 3-member TLS etcd; one iteration is a push of a changed
// template until every agent reports the new generation applied and
// healthy. Reports the median (target: 50 agents <= 2 s on 2 cores).
func BenchmarkConverge(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchConverge(b, n) })
	}
}

func benchConverge(b *testing.B, n int) {
	c := etcdtest.Start(b)
	key, err := fleet.WriteNewKey(filepath.Join(b.TempDir(), "fleet.key"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString(`domain = "meet.example.com"
cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")
auth "anonymous" {}
template "marker" {
  source      = "marker.tmpl"
  destination = "/etc/fleet-marker.txt"
}
host "signal1" {
  address = "10.0.0.1"
  roles   = ["prosody", "jicofo", "nginx"]
}
`)
	hosts := []string{"signal1"}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&sb, "host \"jvb%d\" {\n  address = \"10.0.%d.%d\"\n  roles = [\"jvb\"]\n}\n", i, i/200+1, i%200+1)
		hosts = append(hosts, fmt.Sprintf("jvb%d", i))
	}
	specPath := filepath.Join(dir, "fleet.hcl")
	if err := os.WriteFile(specPath, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	admin, err := fleetstore.Open(fleetstore.Config{Endpoints: c.Endpoints(), TLS: c.TLS()})
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runners []*fleet.Runner
	done := make(chan struct{}, n)
	for _, h := range hosts {
		st, err := fleetstore.Open(fleetstore.Config{Endpoints: c.Endpoints(), TLS: c.TLS()})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		root := b.TempDir()
		d := agent.NewDaemon(agent.DaemonConfig{Root: root, NoJoinAPI: true})
		defer d.Close()
		r := fleet.NewRunner(fleet.RunnerConfig{Store: st, Key: key, Host: h, Root: root, Daemon: d, LeaseTTL: 10 * time.Second})
		runners = append(runners, r)
		go func() {
			_ = fleet.RunHost(ctx, r, daemon.Config{Quiet: 10 * time.Millisecond, Max: 100 * time.Millisecond, Rescan: -1},
				daemon.Deps{Notifier: nopNotifier{}, Signals: make(chan os.Signal), WatchdogInterval: -1})
			done <- struct{}{}
		}()
	}
	defer func() {
		cancel()
		for range hosts {
			<-done
		}
	}()
	push := func(i int) int64 {
		if err := os.WriteFile(filepath.Join(dir, "marker.tmpl"), fmt.Appendf(nil, "%d on {{.Host}}\n", i), 0o600); err != nil {
			b.Fatal(err)
		}
		bu, plans, err := fleet.Build(specPath, spec.Options{}, n)
		if err != nil {
			b.Fatal(err)
		}
		res, err := fleet.Push(ctx, admin, key, bu, plans, fleet.Generation{MaxUnavailable: n})
		if err != nil {
			b.Fatal(err)
		}
		return res.Generation
	}
	waitAll := func(gen int64) {
		deadline := time.Now().Add(5 * time.Minute)
		for _, r := range runners {
			for {
				ch := r.Changed()
				if s := r.Status(); s.Record.Generation == gen && s.Record.Healthy {
					break
				}
				select {
				case <-ch:
				case <-time.After(time.Second):
				}
				if time.Now().After(deadline) {
					b.Fatalf("no convergence on generation %d: %+v", gen, r.Status())
				}
			}
		}
	}
	waitAll(push(0)) // first apply of every root (state dirs, CA) is not measured
	// CPU time of the whole test process (agents, push) per convergence:
	// what a loaded machine distorts less than the wall time. etcd's own
	// CPU is not in it.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var times, cpus []time.Duration
	b.ResetTimer()
	for i := 1; b.Loop(); i++ {
		t0, c0 := time.Now(), cpu()
		waitAll(push(i))
		times = append(times, time.Since(t0))
		cpus = append(cpus, cpu()-c0)
	}
	b.StopTimer()
	slices.Sort(times)
	slices.Sort(cpus)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-ms/converge")
	b.ReportMetric(float64(cpus[len(cpus)/2].Milliseconds()), "median-cpu-ms/converge")
}
