package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// BenchmarkValidateTemplates measures Load (parse, decode, validate) of a
// spec with many templates; validation must grow linearly. Reported:
// ns/op and the peak heap in MB (HeapMB).
func BenchmarkValidateTemplates(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := manyTemplates(b, n)
			var peak uint64
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res := Load(p, Options{Hostname: func() (string, error) { return "h", nil }})
				if res.HasErrors() {
					b.Fatal(res.Summary())
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			b.ReportMetric(float64(peak)/(1<<20), "HeapMB")
			// CPU time per load: wall time on a shared machine says little.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
