package firewall

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Probe results.
const (
	ProbeServed  = "served"   // TCP connected / a STUN answer came back
	ProbeRefused = "refused"  // the firewall let it in; nothing listens
	ProbeDropped = "dropped"  // no answer to a TCP SYN: filtered
	ProbeSilent  = "no-reply" // UDP without an answer: dropped, or the service ignores probes
)

// Probe is one self-test result.
type Probe struct {
	Port   Port
	Result string
}

// SelfTest probes ports from a network namespace of its own joined to this
// one by a veth pair (link-local 169.254.211.0/30): the probes arrive on a
// non-loopback interface and cross the input chain like a client's packets.
// The namespace and the link are removed before it returns. Needs root and
// ip(8). Ranges are probed on their first port; UDP ports get a STUN
// binding request.
//
// hostNS names the namespace under test ("" = this process's own; tests pass
// a namespace they made).
func SelfTest(ctx context.Context, hostNS string, ports []Port, timeout time.Duration) ([]Probe, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	ns, hostIf, nsIf := "jitsi-agent-selftest-"+suffix, "jast"+suffix, "jasp"+suffix
	const hostAddr, nsAddr = "169.254.211.1", "169.254.211.2"
	ip := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %s: %w", strings.Join(args, " "), strings.TrimSpace(string(out)), err)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		return nil, err
	}
	defer func() { _ = exec.Command("ip", "netns", "del", ns).Run() }()
	var here []string // ip arguments that address the namespace under test
	if hostNS != "" {
		here = []string{"-n", hostNS}
	}
	if err := ip(append(here, "link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns)...); err != nil {
		return nil, err
	}
	defer func() { _ = exec.Command("ip", append(here, "link", "del", hostIf)...).Run() }()
	for _, args := range [][]string{
		append(here, "addr", "add", hostAddr+"/30", "dev", hostIf),
		append(here, "link", "set", hostIf, "up"),
		{"-n", ns, "addr", "add", nsAddr + "/30", "dev", nsIf},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", nsIf, "up"},
	} {
		if err := ip(args...); err != nil {
			return nil, err
		}
	}
	waitUp(ctx, ns, nsIf)
	waitUp(ctx, hostNS, hostIf)
	out := make([]Probe, len(ports))
	errs := make([]error, len(ports))
	done := make(chan struct{})
	for i, p := range ports {
		go func() {
			defer func() { done <- struct{}{} }()
			errs[i] = InNetns(ns, func() error {
				var err error
				if p.Proto == "tcp" {
					out[i].Result, err = probeTCP(ctx, hostAddr, p.From, timeout)
				} else {
					out[i].Result, err = probeUDP(hostAddr, p.From, timeout)
				}
				return err
			})
			out[i].Port = p
		}()
	}
	for range ports {
		<-done
	}
	return out, errors.Join(errs...)
}

// waitUp waits until one end of the veth pair has carrier (ns "" = this
// process's namespace).
func waitUp(ctx context.Context, ns, dev string) {
	deadline := time.Now().Add(2 * time.Second)
	args := []string{"-o", "link", "show", "dev", dev}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		out, _ := exec.CommandContext(ctx, "ip", args...).Output()
		if strings.Contains(string(out), "LOWER_UP") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeTCP connects; a timeout is tried once more (a fresh link may lose
// the first SYN while neighbour discovery runs) before it counts as dropped.
func probeTCP(ctx context.Context, addr string, port int, timeout time.Duration) (string, error) {
	res, err := dialOnce(ctx, addr, port, timeout)
	if err == nil && res == ProbeDropped {
		res, err = dialOnce(ctx, addr, port, timeout)
	}
	return res, err
}

func dialOnce(ctx context.Context, addr string, port int, timeout time.Duration) (string, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err == nil {
		c.Close()
		return ProbeServed, nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return ProbeRefused, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ProbeDropped, nil
	}
	return "", fmt.Errorf("probe %d/tcp: %w", port, err)
}

// probeUDP sends a STUN binding request (RFC 5389): coturn answers it; an
// ICMP port unreachable (ECONNREFUSED on a connected socket) means the
// firewall let it through to a closed port.
func probeUDP(addr string, port int, timeout time.Duration) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return "", fmt.Errorf("probe %d/udp: %w", port, err)
	}
	defer c.Close()
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:], 0x0001) // binding request
	binary.BigEndian.PutUint32(req[4:], 0x2112A442)
	_, _ = rand.Read(req[8:20])
	buf := make([]byte, 1500)
	for range 3 {
		if _, err := c.Write(req); err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return ProbeRefused, nil
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout * 2 / 3))
		n, err := c.Read(buf)
		if err == nil && n >= 20 && string(buf[8:20]) == string(req[8:20]) {
			return ProbeServed, nil
		}
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return ProbeRefused, nil
		}
	}
	return ProbeSilent, nil
}

// InNetns runs f with the calling goroutine's thread in the named network
// namespace (/run/netns/NAME); sockets f opens stay there. When the thread
// cannot be moved back it is not reused (Go ends it with the goroutine).
func InNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", name, err)) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
