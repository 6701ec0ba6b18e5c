package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Networks FreePorts checks a port for.
const (
	TCP    = "tcp"
	UDP    = "udp"
	TCPUDP = "tcp+udp" // coturn listens on both
)

// FreePort returns a loopback port free for network (TCP, UDP or TCPUDP)
// on 127.0.0.1, for a server the test starts that takes a port number
// rather than a listener (nginx, Prosody, coturn, etcd, Pebble). Where the
// test can pass a listener, it should.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	return FreePorts(t, network, 1)[0]
}

// FreePorts returns n distinct free loopback ports (see FreePort).
//
// A port the kernel hands out for 127.0.0.1:0 and the test closes again
// goes back to the pool the kernel hands out from: every listener another
// package's test opens on port 0 in parallel may get it before the server
// binds it. FreePorts picks at random from below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), which neither a bind to port 0 nor
// an outgoing connection uses, and checks each port by binding it.
func FreePorts(t testing.TB, network string, n int) []int {
	t.Helper()
	lo, hi := portPool()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no %d free %s ports on 127.0.0.1 in [%d, %d) (found %v)", n, network, lo, hi, out)
		}
		p := 0 // no room outside the ephemeral range: the kernel picks
		if hi > lo {
			p = lo + rand.IntN(hi-lo)
		}
		got, ok := bindable(network, p)
		if ok && !slices.Contains(out, got) {
			out = append(out, got)
		}
	}
	return out
}

// portPool is the range FreePorts picks from: from 10240 (above the
// well-known ports tests and services use) up to the ephemeral range, or
// above that range when there is no room below it.
func portPool() (lo, hi int) {
	elo, ehi := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, errA := strconv.Atoi(f[0])
			z, errZ := strconv.Atoi(f[1])
			if errA == nil && errZ == nil && a <= z {
				elo, ehi = a, z
			}
		}
	}
	const floor, room = 10240, 2000
	switch {
	case elo-floor >= room:
		return floor, elo
	case 65535-ehi >= room:
		return ehi + 1, 65536
	}
	return 0, 0
}

// bindable binds port (0: any) for network on 127.0.0.1 and releases it;
// it returns the port bound.
func bindable(network string, port int) (int, bool) {
	if network == TCP || network == TCPUDP {
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return 0, false
		}
		port = l.Addr().(*net.TCPAddr).Port
		defer l.Close()
	}
	if network == UDP || network == TCPUDP {
		c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return 0, false
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		defer c.Close()
	}
	if network != TCP && network != UDP && network != TCPUDP {
		panic("testenv: unknown network " + strconv.Quote(network))
	}
	return port, true
}
