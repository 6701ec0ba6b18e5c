package doctor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockStatus is the kernel's view of time synchronisation.
type ClockStatus struct {
	Synchronised bool
	// MaxError is the kernel's maximum error estimate.
	MaxError time.Duration
	// EstError is the estimated error.
	EstError time.Duration
}

// ClockSource reports whether the clock is NTP-disciplined.
type ClockSource interface {
	ClockStatus(ctx context.Context) (ClockStatus, error)
}

// KernelClock reads adjtimex(2) (read-only: modes 0), which chronyd,
// systemd-timesyncd and ntpd all update; it works without systemd or D-Bus.
type KernelClock struct{}

const (
	staUnsync = 0x0040 // STA_UNSYNC
	timeError = 5      // TIME_ERROR: clock not synchronised
	// maxErrorUnsync: the kernel treats the clock as unsynchronised once
	// maxerror reaches 16 s (NTP_PHASE_LIMIT).
	maxErrorUnsync = 16 * time.Second
)

// ClockStatus implements ClockSource.
func (KernelClock) ClockStatus(context.Context) (ClockStatus, error) {
	var tx syscall.Timex
	state, err := syscall.Adjtimex(&tx)
	if err != nil {
		return ClockStatus{}, fmt.Errorf("adjtimex: %w", err)
	}
	st := ClockStatus{
		MaxError: time.Duration(tx.Maxerror) * time.Microsecond,
		EstError: time.Duration(tx.Esterror) * time.Microsecond,
	}
	st.Synchronised = state != timeError && tx.Status&staUnsync == 0 && st.MaxError < maxErrorUnsync
	return st, nil
}

func (c *checker) checkClock(ctx context.Context) Result {
	const id, title = "clock.ntp", "Clock is NTP-synchronised"
	st, err := c.env.Clock.ClockStatus(ctx)
	if err != nil {
		return warn(id, title, "cannot read the clock status: "+err.Error(),
			"check with 'timedatectl' or 'chronyc tracking' that the clock is synchronised")
	}
	if !st.Synchronised {
		return warn(id, title, fmt.Sprintf("the kernel reports the clock as not synchronised (max error %s)", st.MaxError),
			"enable NTP ('timedatectl set-ntp true', or install chrony or systemd-timesyncd); Prosody checks token exp/nbf with no leeway, so skew rejects valid tokens")
	}
	return pass(id, title, fmt.Sprintf("synchronised (estimated error %s, max error %s)", st.EstError, st.MaxError))
}

// SystemInfo reports the resources the checks compare to Jitsi's minimums.
type SystemInfo interface {
	CPUs() int
	MemTotal() (uint64, error) // bytes
	// NoFile returns the open-files limit that applies to the videobridge:
	// the running JVB's limit when found, else this process's, with a
	// description of which one it is.
	NoFile() (soft uint64, source string, err error)
}

// ProcSystem reads /proc and getrlimit(2).
type ProcSystem struct {
	// Proc is the procfs mount point ("" = /proc).
	Proc string
}

func (p ProcSystem) proc() string {
	if p.Proc == "" {
		return "/proc"
	}
	return p.Proc
}

// CPUs implements SystemInfo (the CPUs this process may run on).
func (ProcSystem) CPUs() int { return runtime.NumCPU() }

// MemTotal implements SystemInfo from /proc/meminfo.
func (p ProcSystem) MemTotal() (uint64, error) {
	data, err := os.ReadFile(filepath.Join(p.proc(), "meminfo"))
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	return parseMemTotal(data)
}

func parseMemTotal(data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("MemTotal %q: %w", f[1], err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in meminfo")
}

// NoFile implements SystemInfo.
func (p ProcSystem) NoFile() (uint64, string, error) {
	if pid, lim, ok := p.jvbNoFile(); ok {
		return lim, fmt.Sprintf("running videobridge, pid %d", pid), nil
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, "", fmt.Errorf("getrlimit: %w", err)
	}
	return r.Cur, "this shell's limit; the videobridge is not running", nil
}

// jvbNoFile finds a running videobridge and reads its "Max open files".
func (p ProcSystem) jvbNoFile() (int, uint64, bool) {
	ents, err := os.ReadDir(p.proc())
	if err != nil {
		return 0, 0, false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(p.proc(), e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("org.jitsi.videobridge")) {
			continue
		}
		lim, err := os.ReadFile(filepath.Join(p.proc(), e.Name(), "limits"))
		if err != nil {
			continue
		}
		if v, ok := parseLimitsNoFile(lim); ok {
			return pid, v, true
		}
	}
	return 0, 0, false
}

func parseLimitsNoFile(data []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
		if len(f) < 1 {
			return 0, false
		}
		if f[0] == "unlimited" {
			return ^uint64(0), true
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		return v, err == nil
	}
	return 0, false
}

// Thresholds. The Jitsi handbook's requirements page asks for at least
// 4 GB of RAM and 2 CPU cores for a small deployment (JVB and jicofo each
// default to a 3 GB Java heap cap; a single conference of ~10 participants
// fits). The Debian jitsi-videobridge2 unit sets LimitNOFILE=65000 (each
// media stream and Colibri/ICE socket is a file descriptor), the figure the
// handbook's scaling notes also use.
const (
	minCPUs       = 2
	minMemWarn    = 4 << 30 // 4 GiB: warn below
	minMemFail    = 2 << 30 // 2 GiB: fail below (JVB + jicofo + Prosody do not fit)
	minNoFileWarn = 65000
	minNoFileFail = 4096 // below this the bridge runs out of sockets in a single busy meeting
)

func (c *checker) checkResources(context.Context) []Result {
	s := c.env.System
	var out []Result
	n := s.CPUs()
	if n < minCPUs {
		out = append(out, warn("resources.cpu", "CPU cores", fmt.Sprintf("%d core(s); Jitsi recommends at least %d", n, minCPUs),
			"use a machine with at least 2 cores; the videobridge forwards every stream and jicofo/Prosody share the rest"))
	} else {
		out = append(out, pass("resources.cpu", "CPU cores", fmt.Sprintf("%d cores (minimum %d)", n, minCPUs)))
	}
	mem, err := s.MemTotal()
	gib := func(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
	switch {
	case err != nil:
		out = append(out, warn("resources.memory", "Memory", "cannot read memory size: "+err.Error(),
			"check that /proc is mounted; Jitsi needs at least 4 GB of RAM"))
	case mem < minMemFail:
		out = append(out, fail("resources.memory", "Memory", gib(mem)+"; below the 2 GiB the Java components and Prosody need together",
			"use a machine with at least 4 GB of RAM (8 GB for larger meetings)"))
	case mem < minMemWarn:
		out = append(out, warn("resources.memory", "Memory", gib(mem)+"; Jitsi recommends at least 4 GB",
			"use a machine with at least 4 GB of RAM, or lower the JVB/jicofo heap (VIDEOBRIDGE_MAX_MEMORY, JICOFO_MAX_MEMORY)"))
	default:
		out = append(out, pass("resources.memory", "Memory", gib(mem)+" (minimum 4 GB)"))
	}
	if !c.runs("jvb") {
		out = append(out, skip("resources.nofile", "Open files limit", "this host does not run the videobridge"))
		return out
	}
	lim, src, err := s.NoFile()
	fix := "raise the limit: LimitNOFILE=65000 in the videobridge unit (systemctl edit " + c.unit("jvb", "jitsi-videobridge2.service") +
		"), and DefaultLimitNOFILE in /etc/systemd/system.conf for all services"
	switch {
	case err != nil:
		out = append(out, warn("resources.nofile", "Open files limit", "cannot read the limit: "+err.Error(), fix))
	case lim < minNoFileFail:
		out = append(out, fail("resources.nofile", "Open files limit", fmt.Sprintf("%d (%s); the videobridge needs at least %d", lim, src, minNoFileWarn), fix))
	case lim < minNoFileWarn:
		out = append(out, warn("resources.nofile", "Open files limit", fmt.Sprintf("%d (%s); recommended at least %d", lim, src, minNoFileWarn), fix))
	default:
		out = append(out, pass("resources.nofile", "Open files limit", fmt.Sprintf("%s (%s)", fmtLimit(lim), src)))
	}
	return out
}

func fmtLimit(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
