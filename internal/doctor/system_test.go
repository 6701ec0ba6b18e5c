package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type fakeClock struct {
	st  ClockStatus
	err error
}

func (f fakeClock) ClockStatus(context.Context) (ClockStatus, error) { return f.st, f.err }

type fakeSystem struct {
	cpus   int
	mem    uint64
	memErr error
	nofile uint64
	nfErr  error
}

func (f fakeSystem) CPUs() int                 { return f.cpus }
func (f fakeSystem) MemTotal() (uint64, error) { return f.mem, f.memErr }
func (f fakeSystem) NoFile() (uint64, string, error) {
	return f.nofile, "fake", f.nfErr
}

func TestClock(t *testing.T) {
	d := testDeployment()
	run := func(c ClockSource) Result { return newChecker(d, Env{Clock: c}, "").checkClock(context.Background()) }
	expect(t, run(fakeClock{st: ClockStatus{Synchronised: true, MaxError: 2000000, EstError: 1000}}), Pass, "synchronised")
	r := run(fakeClock{st: ClockStatus{MaxError: 16000000000}})
	expect(t, r, Warn, "not synchronised")
	expect(t, run(fakeClock{err: errors.New("EPERM")}), Warn, "EPERM")
	// The real kernel clock answers (synchronised or not, depending on the host).
	st, err := KernelClock{}.ClockStatus(context.Background())
	if err != nil {
		t.Fatalf("adjtimex: %v", err)
	}
	if st.Synchronised && st.MaxError >= maxErrorUnsync {
		t.Errorf("inconsistent: %+v", st)
	}
	expect(t, run(KernelClock{}), map[bool]Status{true: Pass, false: Warn}[st.Synchronised])
}

func TestResources(t *testing.T) {
	d := testDeployment()
	run := func(s SystemInfo) []Result {
		return newChecker(d, Env{System: s}, "").checkResources(context.Background())
	}
	rs := run(fakeSystem{cpus: 4, mem: 8 << 30, nofile: 65000})
	expect(t, byID(t, rs, "resources.cpu"), Pass, "4 cores")
	expect(t, byID(t, rs, "resources.memory"), Pass, "8.0 GiB")
	expect(t, byID(t, rs, "resources.nofile"), Pass, "65000")
	rs = run(fakeSystem{cpus: 1, mem: 3 << 30, nofile: 20000})
	expect(t, byID(t, rs, "resources.cpu"), Warn, "1 core")
	expect(t, byID(t, rs, "resources.memory"), Warn, "3.0 GiB")
	expect(t, byID(t, rs, "resources.nofile"), Warn, "20000")
	rs = run(fakeSystem{cpus: 2, mem: 1 << 30, nofile: 1024})
	expect(t, byID(t, rs, "resources.memory"), Fail, "1.0 GiB")
	expect(t, byID(t, rs, "resources.nofile"), Fail, "1024")
	rs = run(fakeSystem{cpus: 2, memErr: errors.New("no proc"), nfErr: errors.New("EPERM")})
	expect(t, byID(t, rs, "resources.memory"), Warn, "no proc")
	expect(t, byID(t, rs, "resources.nofile"), Warn, "EPERM")
	d.Host.Roles = []string{"nginx"}
	expect(t, byID(t, run(fakeSystem{cpus: 2, mem: 8 << 30, nofile: 10}), "resources.nofile"), Skip)
}

func TestProcSystemReal(t *testing.T) {
	s := ProcSystem{}
	if s.CPUs() < 1 {
		t.Error("no CPUs")
	}
	m, err := s.MemTotal()
	if err != nil || m < 1<<20 {
		t.Errorf("MemTotal %d %v", m, err)
	}
	n, src, err := s.NoFile()
	if err != nil || n == 0 || src == "" {
		t.Errorf("NoFile %d %q %v", n, src, err)
	}
}

// TestProcSystemFindsJVB reads the limit of a (fake) running videobridge
// from a procfs-shaped directory.
func TestProcSystemFindsJVB(t *testing.T) {
	proc := t.TempDir()
	w := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(proc, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("1/cmdline", "/sbin/init\x00")
	w("1/limits", "Max open files            1024                 4096                 files     \n")
	w("812/cmdline", "java\x00-cp\x00/usr/share/jitsi-videobridge/jitsi-videobridge.jar\x00org.jitsi.videobridge.MainKt\x00")
	w("812/limits", "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            65000                65000                files     \n")
	w("meminfo", "MemTotal:        8039384 kB\nMemFree:  1 kB\n")
	s := ProcSystem{Proc: proc}
	n, src, err := s.NoFile()
	if err != nil || n != 65000 || src != "running videobridge, pid 812" {
		t.Errorf("NoFile = %d %q %v", n, src, err)
	}
	m, err := s.MemTotal()
	if err != nil || m != 8039384*1024 {
		t.Errorf("MemTotal = %d %v", m, err)
	}
	if v, ok := parseLimitsNoFile([]byte("Max open files            unlimited            unlimited            files\n")); !ok || v != ^uint64(0) {
		t.Error("unlimited")
	}
}
