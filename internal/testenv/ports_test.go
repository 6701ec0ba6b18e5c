package testenv

import (
	"net"
	"slices"
	"strconv"
	"testing"
)

// The ports come from outside the kernel's ephemeral range (where a bind
// to port 0 elsewhere could take them), are distinct, and free for the
// network asked for.
func TestFreePorts(t *testing.T) {
	lo, hi := portPool()
	if hi <= lo {
		t.Skip("no room outside the ephemeral range on this machine: FreePorts falls back to the kernel's choice")
	}
	for _, network := range []string{TCP, UDP, TCPUDP} {
		ports := FreePorts(t, network, 20)
		for _, p := range ports {
			if p < lo || p >= hi {
				t.Errorf("%s port %d outside [%d, %d)", network, p, lo, hi)
			}
		}
		sorted := slices.Clone(ports)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(ports) {
			t.Errorf("%s ports not distinct: %v", network, ports)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		if network != UDP {
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				t.Errorf("%s port %d not free for TCP: %v", network, ports[0], err)
			} else {
				l.Close()
			}
		}
		if network != TCP {
			c, err := net.ListenPacket("udp4", addr)
			if err != nil {
				t.Errorf("%s port %d not free for UDP: %v", network, ports[0], err)
			} else {
				c.Close()
			}
		}
	}
	// A port in use is not handed out.
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(lo)))
	if err != nil {
		t.Skipf("port %d in use here: %v", lo, err)
	}
	defer l.Close()
	if _, ok := bindable(TCP, lo); ok {
		t.Errorf("port %d reported free while the test listens on it", lo)
	}
}
