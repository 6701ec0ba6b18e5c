package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// manyTemplates writes a spec with n template blocks (one shared source)
// and returns its path.
func manyTemplates(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("DOMAIN={{ .Domain }}\n"), 0o600)
	var b strings.Builder
	b.WriteString("domain = \"meet.example.com\"\nauth \"anonymous\" {}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "template \"t%d\" {\n  source      = \"t.tmpl\"\n  destination = \"/srv/app/d%d/f%d.conf\"\n  mode        = \"0640\"\n}\n", i, i%100, i)
	}
	p := filepath.Join(dir, "spec.hcl")
	if b.Len() > MaxSpecFile {
		tb.Skipf("a spec of %d templates is %d bytes, over the %d limit", n, b.Len(), MaxInputFile)
	}
	os.WriteFile(p, []byte(b.String()), 0o600)
	return p
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reports the process's peak resident set size since the last
// resetPeakRSS (VmHWM), or false where Linux's /proc does not offer it.
func peakRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb uint64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb); err == nil {
				return kb << 10, true
			}
		}
	}
	return 0, false
}

// resetPeakRSS returns freed memory to the kernel and resets VmHWM to the
// current RSS (clear_refs 5), so the next peakRSS is this load's peak.
func resetPeakRSS() bool {
	runtime.GC()
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// BenchmarkValidateTemplates measures Load (parse, decode, validate) of a
// spec with many templates; validation must grow linearly. Reported per
// load: CPU seconds (user+system: wall time on a shared machine says
// little), the process's peak RSS during the load in MB (peak-RSS-MB: the
// test binary's own few MB included) and the heap still live afterwards
// with the result held (live-MB).
func BenchmarkValidateTemplates(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := manyTemplates(b, n)
			var cpu time.Duration
			var peak, live uint64
			rss := true
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				rss = rss && resetPeakRSS()
				cpu0 := cpuTime()
				b.StartTimer()
				res := Load(p, Options{Hostname: func() (string, error) { return "h", nil }})
				b.StopTimer()
				cpu += cpuTime() - cpu0
				if res.HasErrors() {
					b.Fatal(res.Summary())
				}
				if hwm, ok := peakRSS(); ok && rss {
					peak = max(peak, hwm)
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				live = max(live, ms.HeapAlloc)
				runtime.KeepAlive(res)
				b.StartTimer()
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			if rss {
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
			}
			b.ReportMetric(float64(live)/(1<<20), "live-MB")
		})
	}
}
