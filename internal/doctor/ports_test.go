package doctor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

type fakeSockets struct {
	socks []Socket
	err   error
}

func (f fakeSockets) Listening(context.Context) ([]Socket, error) { return f.socks, f.err }

func sock(proto, addr string, port int, procs ...Proc) Socket {
	return Socket{Proto: proto, Addr: netip.MustParseAddr(addr), Port: port, Inode: 1, Procs: procs}
}

var (
	nginxP   = Proc{PID: 10, Comm: "nginx", Cmdline: "nginx: master process /usr/sbin/nginx"}
	nginxW   = Proc{PID: 11, Comm: "nginx", Cmdline: "nginx: worker process"}
	jvbP     = Proc{PID: 20, Comm: "java", Cmdline: "java -Xmx3072m -cp /usr/share/jitsi-videobridge/jitsi-videobridge.jar org.jitsi.videobridge.MainKt"}
	jicofoP  = Proc{PID: 21, Comm: "java", Cmdline: "java -cp /usr/share/jicofo/jicofo.jar org.jitsi.jicofo.Main"}
	coturnP  = Proc{PID: 30, Comm: "turnserver", Cmdline: "/usr/bin/turnserver -c /etc/turnserver.conf"}
	prosodyP = Proc{PID: 40, Comm: "lua5.4", Cmdline: "lua5.4 /usr/bin/prosody -F"}
	apacheP  = Proc{PID: 50, Comm: "apache2", Cmdline: "/usr/sbin/apache2 -k start"}
)

func healthySockets() []Socket {
	return []Socket{
		sock("tcp", "0.0.0.0", 443, nginxP, nginxW), sock("tcp", "::", 443, nginxP, nginxW),
		sock("tcp", "0.0.0.0", 80, nginxP, nginxW),
		sock("udp", "0.0.0.0", 10000, jvbP), sock("udp", "::", 10000, jvbP),
		sock("udp", "0.0.0.0", 3478, coturnP), sock("tcp", "0.0.0.0", 5349, coturnP),
		sock("tcp", "127.0.0.1", 5222, prosodyP), sock("tcp", "::1", 5222, prosodyP),
		sock("tcp", "127.0.0.1", 5280, prosodyP), sock("tcp", "::1", 5280, prosodyP),
		sock("tcp", "127.0.0.1", 5347, prosodyP),
		sock("tcp", "127.0.0.1", 8888, jicofoP),
	}
}

func TestPortsHealthy(t *testing.T) {
	d := testDeployment()
	rs := newChecker(d, Env{Sockets: fakeSockets{socks: healthySockets()}}, "").checkPorts(context.Background())
	for _, id := range []string{"port.https", "port.http", "port.jvb", "port.turn", "port.turns", "port.xmpp", "port.bosh", "port.prosody-extra"} {
		expect(t, byID(t, rs, id), Pass)
	}
	expect(t, byID(t, rs, "port.https"), Pass, "nginx (pid 10,11)", "0.0.0.0, ::")
}

func TestPortsFollowSpec(t *testing.T) {
	d := testDeployment()
	d.TURN.Enabled = false
	d.Web.HTTPRedirect = false
	d.Web.HTTPSPort = 8443
	d.Videobridge.UDPPort = 10001
	socks := []Socket{sock("tcp", "0.0.0.0", 8443, nginxP), sock("udp", "0.0.0.0", 10001, jvbP), sock("tcp", "127.0.0.1", 5222, prosodyP),
		sock("tcp", "127.0.0.1", 5280, prosodyP)}
	rs := newChecker(d, Env{Sockets: fakeSockets{socks: socks}}, "").checkPorts(context.Background())
	if len(rs) != 5 {
		t.Fatalf("want https, jvb, xmpp, bosh, prosody-extra only; got %v", rs)
	}
	for _, r := range rs {
		expect(t, r, Pass)
	}
	d.Host.Roles = []string{"jvb"}
	rs = newChecker(d, Env{Sockets: fakeSockets{socks: socks}}, "").checkPorts(context.Background())
	if len(rs) != 1 || rs[0].ID != "port.jvb" {
		t.Errorf("jvb-only host: %v", rs)
	}
}

func TestPortsFailures(t *testing.T) {
	d := testDeployment()
	run := func(socks ...Socket) []Result {
		return newChecker(d, Env{Sockets: fakeSockets{socks: socks}}, "").checkPorts(context.Background())
	}
	// Nothing listens anywhere.
	for _, r := range run() {
		if r.ID == "port.prosody-extra" {
			expect(t, r, Pass)
			continue
		}
		expect(t, r, Fail, "nothing listens")
	}
	// apache2 holds 443 next to nginx.
	rs := run(sock("tcp", "0.0.0.0", 443, apacheP), sock("tcp", "::", 443, nginxP))
	r := byID(t, rs, "port.https")
	expect(t, r, Fail, "held by apache2 (pid 50)", "besides nginx")
	if !strings.Contains(r.Fix, "apache2") {
		t.Errorf("fix %q does not name apache2", r.Fix)
	}
	// jicofo (java, but not the bridge) on the media port.
	expect(t, byID(t, run(sock("udp", "0.0.0.0", 10000, jicofoP)), "port.jvb"), Fail, "held by java")
	// Prosody's c2s on all interfaces: firewall hint.
	r = byID(t, run(sock("tcp", "0.0.0.0", 5222, prosodyP), sock("tcp", "::", 5222, prosodyP)), "port.xmpp")
	expect(t, r, Warn, "non-loopback", "0.0.0.0")
	if !strings.Contains(r.Fix, "5222") || !strings.Contains(r.Fix, "c2s_interfaces") {
		t.Errorf("fix %q", r.Fix)
	}
	// BOSH only on ::1: nginx's upstream 127.0.0.1:5280 is refused.
	r = byID(t, run(sock("tcp", "::1", 5280, prosodyP)), "port.bosh")
	expect(t, r, Fail, "not reachable on 127.0.0.1")
	// Dual-stack wildcard covers it (with a firewall hint).
	expect(t, byID(t, run(sock("tcp", "::", 5280, prosodyP)), "port.bosh"), Warn, "non-loopback")
	// Prosody's HTTPS and s2s listeners on all interfaces.
	r = byID(t, run(sock("tcp", "0.0.0.0", 5281, prosodyP), sock("tcp", "::", 5269, prosodyP), sock("tcp", "127.0.0.1", 5347, prosodyP)), "port.prosody-extra")
	expect(t, r, Warn, "5269/tcp s2s on ::", "5281/tcp HTTPS on 0.0.0.0")
	if !strings.Contains(r.Fix, "https_ports = { }") || strings.Contains(r.Fix, "component_ports") {
		t.Errorf("fix %q", r.Fix)
	}
	// Owner not visible (not root).
	expect(t, byID(t, run(sock("udp", "0.0.0.0", 3478)), "port.turn"), Warn, "not visible")
	// Listing fails.
	rs = newChecker(d, Env{Sockets: fakeSockets{err: errors.New("permission denied")}}, "").checkPorts(context.Background())
	for _, r := range rs {
		expect(t, r, Fail, "permission denied")
	}
}

func TestParseSocketTable(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1466 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1466 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   110        0 31338 1 0000000000000000 20 4 30 10 -1
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1466 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: B80D0120000000000000000010000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
`
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:2710 00000000:0000 07 00000000:00000000 00:00000000 00000000   999        0 555 2 0000000000000000 0
  101: 0A00000A:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 556 2 0000000000000000 0
`
	s, err := parseSocketTable([]byte(tcp), "tcp")
	if err != nil || len(s) != 1 || s[0].Addr.String() != "127.0.0.1" || s[0].Port != 5222 || s[0].Inode != 31337 {
		t.Errorf("tcp: %+v %v", s, err)
	}
	s, err = parseSocketTable([]byte(tcp6), "tcp")
	if err != nil || len(s) != 3 || s[0].Addr.String() != "::1" || s[0].Port != 5222 ||
		s[1].Addr.String() != "127.0.0.1" || s[1].Port != 443 || s[2].Addr.String() != "2001:db8::10" {
		t.Errorf("tcp6: %+v %v", s, err)
	}
	s, err = parseSocketTable([]byte(udp), "udp")
	if err != nil || len(s) != 1 || s[0].Port != 10000 || s[0].Addr.String() != "0.0.0.0" {
		t.Errorf("udp: %+v %v", s, err)
	}
	if _, err := parseSocketTable([]byte("h\n 0: zz:1 00000000:0000 0A a b c d e 1\n"), "tcp"); err == nil {
		t.Error("bad address accepted")
	}
}

// TestProcSocketsReal opens real listeners on loopback and finds them, with
// this test process as their owner, in the real /proc tables.
func TestProcSocketsReal(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	ul, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close() })
	var t6 net.Listener
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		t6 = l
		t.Cleanup(func() { l.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	socks, err := ProcSockets{}.Listening(ctx)
	if err != nil {
		t.Fatal(err)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	me := Proc{PID: os.Getpid(), Comm: strings.TrimSpace(string(comm))}
	find := func(proto string, port int, addr string) {
		t.Helper()
		for _, s := range socks {
			if s.Proto == proto && s.Port == port && s.Addr.String() == addr {
				for _, p := range s.Procs {
					if p.PID == me.PID && p.Comm == me.Comm {
						return
					}
				}
				t.Errorf("%s %s:%d found but owners %v do not include pid %d", proto, addr, port, s.Procs, me.PID)
				return
			}
		}
		t.Errorf("%s %s:%d not in the socket table", proto, addr, port)
	}
	tport := tl.Addr().(*net.TCPAddr).Port
	uport := ul.LocalAddr().(*net.UDPAddr).Port
	find("tcp", tport, "127.0.0.1")
	find("udp", uport, "127.0.0.1")
	if t6 != nil {
		find("tcp", t6.Addr().(*net.TCPAddr).Port, "::1")
	}

	// The same table through evalPort: held by the right process, by the
	// wrong one, and on loopback only.
	isMe := func(p Proc) bool { return p.PID == me.PID }
	want := portWant{id: "port.test", title: "test", proto: "tcp", port: tport, service: "the test", match: isMe,
		loopbackOnly: true, startFix: "start it"}
	expect(t, evalPort(want, socks), Pass, me.Comm)
	want.match = isNginx
	want.service = "nginx"
	expect(t, evalPort(want, socks), Fail, "held by "+me.Comm)
	want = portWant{id: "port.test", title: "test", proto: "udp", port: uport, match: isMe, startFix: "start it"}
	expect(t, evalPort(want, socks), Pass)
	// A closed listener disappears.
	tl.Close()
	socks, err = ProcSockets{}.Listening(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = portWant{id: "port.test", title: "test", proto: "tcp", port: tport, match: isMe, startFix: "start it"}
	expect(t, evalPort(want, socks), Fail, "nothing listens")
}

func TestProcessMatchers(t *testing.T) {
	if !isJVB(jvbP) || isJVB(jicofoP) || !isJVB(Proc{Comm: "java"}) {
		t.Error("isJVB")
	}
	if !isProsody(prosodyP) || !isProsody(Proc{Comm: "prosody"}) || isProsody(Proc{Comm: "lua5.4", Cmdline: "lua5.4 x.lua"}) {
		t.Error("isProsody")
	}
	if !isCoturn(coturnP) || isCoturn(nginxP) || !isNginx(nginxW) {
		t.Error("isCoturn/isNginx")
	}
}

// A front host wants HAProxy on the HTTPS port; nginx there is wrong.
func TestPortsFront(t *testing.T) {
	d := testDeployment()
	d.Host.Roles = []string{"front"}
	haproxyP := Proc{PID: 60, Comm: "haproxy", Cmdline: "/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg"}
	rs := newChecker(d, Env{Sockets: fakeSockets{socks: []Socket{sock("tcp", "::", 443, haproxyP)}}}, "").checkPorts(context.Background())
	if len(rs) != 1 {
		t.Fatalf("front host: want the front's HTTPS port only, got %v", rs)
	}
	expect(t, byID(t, rs, "port.front-https"), Pass, "haproxy (pid 60)")
	r := byID(t, newChecker(d, Env{Sockets: fakeSockets{socks: []Socket{sock("tcp", "::", 443, nginxP)}}}, "").checkPorts(context.Background()), "port.front-https")
	expect(t, r, Fail, "held by nginx")
	if !strings.Contains(r.Fix, "haproxy -c -f /etc/haproxy/haproxy.cfg") && !strings.Contains(r.Fix, "nginx") {
		t.Errorf("fix %q", r.Fix)
	}
}
