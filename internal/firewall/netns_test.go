package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// lab is two network namespaces made by the test, joined by a veth pair:
// "host" runs the firewall, "outside" is the Internet. Every nft command
// runs inside host (ip netns exec), never in the test machine's namespace.
type lab struct {
	host, outside string
	hostIP4       string // 10.77.0.1
	outIP4        string // 10.77.0.2
	hostIP6       string // fd77::1
	nft           Nft
}

var labSeq atomic.Int64

func newLab(t testing.TB) *lab {
	t.Helper()
	testenv.Root(t, "network namespaces for the nftables tests")
	testenv.LookPath(t, "ip", "apt-get install iproute2")
	nftPath := testenv.LookPath(t, "nft", "apt-get install nftables")
	n := labSeq.Add(1)
	l := &lab{
		host:    fmt.Sprintf("jafw-h-%d-%d", os.Getpid(), n),
		outside: fmt.Sprintf("jafw-o-%d-%d", os.Getpid(), n),
		hostIP4: "10.77.0.1", outIP4: "10.77.0.2", hostIP6: "fd77::1",
	}
	vh, vo := fmt.Sprintf("jfh%d", n), fmt.Sprintf("jfo%d", n)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", l.host)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.host).Run() })
	ip("netns", "add", l.outside)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.outside).Run() })
	// Created inside the host namespace, so the test machine never holds
	// the link, not even for a moment.
	ip("-n", l.host, "link", "add", vh, "type", "veth", "peer", "name", vo, "netns", l.outside)
	ip("-n", l.host, "addr", "add", l.hostIP4+"/24", "dev", vh)
	ip("-n", l.outside, "addr", "add", l.outIP4+"/24", "dev", vo)
	ip("-n", l.host, "addr", "add", l.hostIP6+"/64", "dev", vh, "nodad")
	ip("-n", l.outside, "addr", "add", "fd77::2/64", "dev", vo, "nodad")
	for _, ns := range []struct{ ns, dev string }{{l.host, vh}, {l.outside, vo}} {
		ip("-n", ns.ns, "link", "set", "lo", "up")
		ip("-n", ns.ns, "link", "set", ns.dev, "up")
	}
	l.nft = Nft{Argv: []string{"ip", "netns", "exec", l.host, nftPath}}
	l.waitLink(t)
	return l
}

// waitLink waits until the veth pair carries traffic both ways (a fresh link
// drops its first packets while the carrier comes up).
func (l *lab) waitLink(t testing.TB) {
	t.Helper()
	var ln net.Listener
	in(t, l.host, func() {
		var err error
		if ln, err = net.Listen("tcp", "[::]:0"); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{l.hostIP4, l.hostIP6} {
		for {
			c, err := l.dialTCP(t, addr, port, dialTimeout)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lab's veth pair never came up: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// in runs f with the calling thread in network namespace ns; sockets created
// by f stay in that namespace.
func in(t testing.TB, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns %s: %v", ns, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: Go ends it with the goroutine.
			t.Errorf("setns back: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

// listenTCP starts an accepting echo server in the host namespace.
func (l *lab) listenTCP(t *testing.T, port int) {
	t.Helper()
	var ln net.Listener
	in(t, l.host, func() {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// listenUDP starts a UDP echo server in the host namespace.
func (l *lab) listenUDP(t *testing.T, port int) {
	t.Helper()
	var pc net.PacketConn
	in(t, l.host, func() {
		var err error
		pc, err = net.ListenPacket("udp", fmt.Sprintf("[::]:%d", port))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// dialTimeout is how long an attempt that should be dropped waits before
// it counts as dropped (a missing listener is "connection refused" at once).
const dialTimeout = 700 * time.Millisecond

// openTimeout is how long an attempt that should get through may take. A
// loaded machine (CI runs packages in parallel under -race) can hold the
// answer back for longer than dialTimeout, which would read as a drop; a
// passing check ends as soon as the answer comes, so only a failing one
// waits this long.
const openTimeout = 15 * time.Second

// expectTimeout is the wait for a check that expects open (or closed).
func expectTimeout(open bool) time.Duration {
	if open {
		return openTimeout
	}
	return dialTimeout
}

// dialTCP connects from the outside namespace to the host.
func (l *lab) dialTCP(t testing.TB, addr string, port int, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var err error
	in(t, l.outside, func() {
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
	})
	return c, err
}

// tcpOpen reports whether a TCP connection from outside gets through (and
// echoes); want is what the caller expects and sets how long a silent drop
// is waited for (expectTimeout). It fails the test on errors other than a
// timeout.
func (l *lab) tcpOpen(t *testing.T, addr string, port int, want bool) bool {
	t.Helper()
	c, err := l.dialTCP(t, addr, port, expectTimeout(want))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		t.Fatalf("dial %s:%d: %v (want a connection or a silent drop)", addr, port, err)
	}
	defer c.Close()
	echo(t, c)
	return true
}

// udpOpen reports whether a datagram from outside gets an echo back; want
// sets how long it waits, as for tcpOpen. A datagram is sent again every
// dialTimeout/3 (a fresh link may lose the first one).
func (l *lab) udpOpen(t *testing.T, addr string, port int, want bool) bool {
	t.Helper()
	var c net.Conn
	in(t, l.outside, func() {
		var err error
		c, err = net.Dial("udp", net.JoinHostPort(addr, fmt.Sprint(port)))
		if err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	buf := make([]byte, 64)
	deadline := time.Now().Add(expectTimeout(want))
	for time.Now().Before(deadline) {
		_ = c.SetDeadline(time.Now().Add(dialTimeout / 3))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
			return true
		}
	}
	return false
}

func echo(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(openTimeout))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 5)
	if _, err := ioReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo over %s: %q, %v", c.RemoteAddr(), buf, err)
	}
}

func ioReadFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ruleset lists the host namespace's whole ruleset.
func (l *lab) ruleset(t *testing.T) string {
	t.Helper()
	out, err := l.nft.run(context.Background(), nil, "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// load loads a script into the host namespace directly (test set-up).
func (l *lab) load(t *testing.T, script string) {
	t.Helper()
	if err := l.nft.Load(context.Background(), []byte(script)); err != nil {
		t.Fatal(err)
	}
}
