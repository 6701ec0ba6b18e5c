package doctor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Proc is a process holding a socket.
type Proc struct {
	PID     int
	Comm    string // /proc/PID/comm
	Cmdline string // /proc/PID/cmdline, NULs replaced by spaces
}

// Socket is a listening TCP socket or a bound, unconnected UDP socket.
type Socket struct {
	Proto string // "tcp" or "udp"
	Addr  netip.Addr
	Port  int
	Inode uint64
	// Procs hold the socket (empty when unknown: another user's process
	// without root, or another network namespace).
	Procs []Proc
}

// SocketLister returns the host's listening sockets with their owners.
type SocketLister interface {
	Listening(ctx context.Context) ([]Socket, error)
}

// ProcSockets reads /proc/net/{tcp,tcp6,udp,udp6} and maps socket inodes to
// processes through /proc/*/fd.
type ProcSockets struct {
	// Proc is the procfs mount point ("" = /proc).
	Proc string
}

const (
	tcpListen = 0x0A
	udpClose  = 0x07 // a bound, unconnected UDP socket
)

// Listening implements SocketLister.
func (p ProcSockets) Listening(ctx context.Context) ([]Socket, error) {
	proc := p.Proc
	if proc == "" {
		proc = "/proc"
	}
	var out []Socket
	for _, f := range []struct{ file, proto string }{
		{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"},
	} {
		data, err := os.ReadFile(filepath.Join(proc, "net", f.file))
		if err != nil {
			if os.IsNotExist(err) && strings.HasSuffix(f.file, "6") {
				continue // IPv6 disabled
			}
			return nil, fmt.Errorf("read socket table: %w", err)
		}
		socks, err := parseSocketTable(data, f.proto)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", filepath.Join(proc, "net", f.file), err)
		}
		out = append(out, socks...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := map[uint64][]int{}
	for i, s := range out {
		if s.Inode != 0 {
			want[s.Inode] = append(want[s.Inode], i)
		}
	}
	owners, err := socketOwners(ctx, proc, want)
	if err != nil {
		return nil, err
	}
	for ino, idx := range want {
		for _, i := range idx {
			out[i].Procs = owners[ino]
		}
	}
	return out, nil
}

// parseSocketTable parses one /proc/net/{tcp,udp}[6] file and keeps the
// listening (tcp) or bound-unconnected (udp) sockets.
func parseSocketTable(data []byte, proto string) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		st, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", fields[3], err)
		}
		if proto == "tcp" && st != tcpListen {
			continue
		}
		if proto == "udp" {
			if st != udpClose {
				continue
			}
			if _, rport, err := parseHexAddr(fields[2]); err != nil || rport != 0 {
				continue // connected UDP socket (a client), not a server
			}
		}
		addr, port, err := parseHexAddr(fields[1])
		if err != nil {
			return nil, err
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", fields[9], err)
		}
		out = append(out, Socket{Proto: proto, Addr: addr, Port: port, Inode: ino})
	}
	return out, sc.Err()
}

// parseHexAddr decodes "0100007F:1F90" (IPv4) or the 32-hex-digit IPv6 form;
// the kernel prints each 32-bit word in host (little-endian) byte order.
func parseHexAddr(s string) (netip.Addr, int, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("address %q: no port", s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("address %q: port: %w", s, err)
	}
	b, err := hex.DecodeString(host)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("address %q: bad host part", s)
	}
	for w := 0; w < len(b); w += 4 {
		b[w], b[w+1], b[w+2], b[w+3] = b[w+3], b[w+2], b[w+1], b[w]
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap(), int(p), nil
}

// socketOwners walks /proc/*/fd and returns the processes holding each of
// the wanted inodes. Unreadable processes are skipped (not root).
func socketOwners(ctx context.Context, proc string, want map[uint64][]int) (map[uint64][]Proc, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	owners := map[uint64][]Proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fdDir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		var pr *Proc
		seen := map[uint64]bool{}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil || seen[ino] {
				continue
			}
			if _, ok := want[ino]; !ok {
				continue
			}
			seen[ino] = true
			if pr == nil {
				pr = &Proc{PID: pid}
				if b, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm")); err == nil {
					pr.Comm = strings.TrimSpace(string(b))
				}
				if b, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline")); err == nil {
					pr.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
				}
			}
			owners[ino] = append(owners[ino], *pr)
		}
	}
	return owners, nil
}

// portWant is one port the deployment needs.
type portWant struct {
	id, title string
	proto     string
	port      int
	service   string // what should hold it, for messages
	unit      string // systemd unit to start
	match     func(Proc) bool
	// loopbackOnly: binding a non-loopback address is a warning.
	loopbackOnly bool
	// startFix says how to get the port bound when nothing listens.
	startFix string
	// reach, when valid, is the address a client on this host connects to
	// (nginx proxies BOSH to 127.0.0.1:5280): a socket must cover it.
	reach netip.Addr
}

func isNginx(p Proc) bool   { return p.Comm == "nginx" }
func isHAProxy(p Proc) bool { return p.Comm == "haproxy" }
func isCoturn(p Proc) bool {
	return p.Comm == "turnserver" || strings.Contains(p.Cmdline, "turnserver")
}
func isJVB(p Proc) bool {
	if strings.Contains(p.Comm, "videobridge") || strings.Contains(p.Cmdline, "videobridge") {
		return true
	}
	return p.Comm == "java" && p.Cmdline == "" // cmdline unreadable: give java the benefit of the doubt
}
func isProsody(p Proc) bool {
	return p.Comm == "prosody" || (strings.HasPrefix(p.Comm, "lua") && strings.Contains(p.Cmdline, "prosody"))
}

func (c *checker) unit(component, fallback string) string {
	if s, ok := c.d.Services[component]; ok && s.Unit != "" {
		return s.Unit
	}
	return fallback
}

// portWants lists the ports this host must have bound.
func (c *checker) portWants() []portWant {
	d := c.d
	var ws []portWant
	if c.runs(spec.Nginx) {
		https := d.Web.HTTPSPort
		if https == 0 {
			https = 443
		}
		u := c.unit(spec.Nginx, "nginx.service")
		ws = append(ws, portWant{id: "port.https", title: "HTTPS port (nginx)", proto: "tcp", port: https,
			service: "nginx", unit: u, match: isNginx,
			startFix: "start nginx (systemctl start " + u + "); if it fails, 'nginx -t' shows why"})
		if d.TLS.ACME != nil || d.Web.HTTPRedirect {
			http := d.Web.HTTPPort
			if http == 0 {
				http = 80
			}
			why := "HTTP redirect"
			if d.TLS.ACME != nil {
				why = "ACME HTTP-01"
			}
			ws = append(ws, portWant{id: "port.http", title: "HTTP port (nginx, " + why + ")", proto: "tcp", port: http,
				service: "nginx", unit: u, match: isNginx,
				startFix: "start nginx (systemctl start " + u + ") and make sure the site listens on port " + strconv.Itoa(http)})
		}
	}
	if c.runs(spec.Front) {
		https := d.Web.HTTPSPort
		if https == 0 {
			https = 443
		}
		u := c.unit(spec.Front, "haproxy.service")
		ws = append(ws, portWant{id: "port.front-https", title: "HTTPS port (front, HAProxy)", proto: "tcp", port: https,
			service: "haproxy", unit: u, match: isHAProxy,
			startFix: "start HAProxy (systemctl start " + u + "); if it fails, 'haproxy -c -f /etc/haproxy/haproxy.cfg' shows why"})
	}
	if c.runs(spec.JVB) && d.Videobridge.UDPPort > 0 {
		u := c.unit(spec.JVB, "jitsi-videobridge2.service")
		ws = append(ws, portWant{id: "port.jvb", title: "Media port (videobridge)", proto: "udp", port: d.Videobridge.UDPPort,
			service: "jitsi-videobridge", unit: u, match: isJVB,
			startFix: "start the videobridge (systemctl start " + u + ") and check /var/log/jitsi/jvb.log"})
	}
	if d.TURN.Enabled && c.runs(spec.Coturn) {
		u := c.unit(spec.Coturn, "coturn.service")
		p, tp := d.TURN.Port, d.TURN.TLSPort
		if p == 0 {
			p = 3478
		}
		if tp == 0 {
			tp = 5349
		}
		fix := "start coturn (systemctl start " + u + "; TURNSERVER_ENABLED=1 in /etc/default/coturn) and check its log"
		ws = append(ws,
			portWant{id: "port.turn", title: "TURN/STUN port (coturn)", proto: "udp", port: p,
				service: "coturn", unit: u, match: isCoturn, startFix: fix},
			portWant{id: "port.turns", title: "TURN over TLS port (coturn)", proto: "tcp", port: tp,
				service: "coturn", unit: u, match: isCoturn,
				startFix: fix + "; coturn only opens the TLS port when it can read the certificate and key"})
	}
	if c.runs(spec.Prosody) {
		u := c.unit(spec.Prosody, "prosody.service")
		model := d.Ports()
		c2s, bosh := model.Port(ports.ProsodyC2S), model.Port(ports.ProsodyHTTP)
		ws = append(ws, portWant{id: "port.xmpp", title: "XMPP c2s port (prosody, loopback only)", proto: "tcp", port: c2s,
			service: "prosody", unit: u, match: isProsody, loopbackOnly: true,
			startFix: "start prosody (systemctl start " + u + "); 'prosodyctl check config' shows config errors. Jicofo and the videobridge log in on this port"})
		if c.runs(spec.Nginx) {
			ws = append(ws, portWant{id: "port.bosh", title: "BOSH/WebSocket port (prosody, loopback only)", proto: "tcp", port: bosh,
				service: "prosody", unit: u, match: isProsody, loopbackOnly: true, reach: netip.MustParseAddr("127.0.0.1"),
				startFix: "start prosody (systemctl start " + u + ") with mod_bosh and mod_websocket; nginx proxies /http-bind and /xmpp-websocket to 127.0.0.1:" + strconv.Itoa(bosh)})
		}
	}
	return ws
}

// prosodyExtraPorts are Prosody listeners a Jitsi host does not need from
// outside: s2s (only for visitors), its own HTTPS (nginx terminates TLS) and
// the legacy external-component port.
var prosodyExtraPorts = []struct {
	port int
	what string
	off  string
}{
	{5269, "s2s", "s2s_ports = { }"},
	{5281, "HTTPS", "https_ports = { }"},
	{5347, "external components", "component_ports = { }"},
}

// evalProsodyExposed warns when those ports are reachable from outside
// (s2s and Prosody's HTTPS only when the spec did not turn them on).
func evalProsodyExposed(socks []Socket, model ports.Set) Result {
	const id, title = "port.prosody-extra", "Prosody's other ports not exposed"
	var open, offs []string
	for _, p := range prosodyExtraPorts {
		if model.Port(ports.ProsodyS2S) == p.port || model.Port(ports.ProsodyHTTPS) == p.port {
			continue // wanted by the spec
		}
		var addrs []string
		for _, s := range socks {
			if s.Proto == "tcp" && s.Port == p.port && !s.Addr.IsLoopback() {
				addrs = append(addrs, s.Addr.String())
			}
		}
		if len(addrs) > 0 {
			open = append(open, fmt.Sprintf("%d/tcp %s on %s", p.port, p.what, strings.Join(addrs, ", ")))
			offs = append(offs, p.off)
		}
	}
	if len(open) == 0 {
		return pass(id, title, "5269, 5281 and 5347 are not listening on public addresses")
	}
	return warn(id, title, "listening publicly: "+strings.Join(open, "; "),
		"firewall these ports, or turn the listeners off in Prosody's global section ("+strings.Join(offs, "; ")+
			"); keep 5269 only if you use visitors (s2s)")
}

func (c *checker) checkPorts(ctx context.Context) []Result {
	wants := c.portWants()
	if len(wants) == 0 {
		return []Result{skip("ports", "Ports bound by the right services", "this host runs none of the listening components")}
	}
	socks, err := c.env.Sockets.Listening(ctx)
	if err != nil {
		out := make([]Result, len(wants))
		for i, w := range wants {
			out[i] = fail(w.id, w.title, "cannot list listening sockets: "+err.Error(),
				"run the doctor on the host itself with access to /proc (as root to see socket owners)")
		}
		return out
	}
	out := make([]Result, 0, len(wants)+1)
	for _, w := range wants {
		out = append(out, evalPort(w, socks))
	}
	if c.runs(spec.Prosody) {
		out = append(out, evalProsodyExposed(socks, c.d.Ports()))
	}
	return out
}

// evalPort decides one port's status from the socket table.
func evalPort(w portWant, socks []Socket) Result {
	label := fmt.Sprintf("%d/%s", w.port, w.proto)
	var mine []Socket
	for _, s := range socks {
		if s.Proto == w.proto && s.Port == w.port {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return fail(w.id, w.title, "nothing listens on "+label, w.startFix)
	}
	right := map[string][]int{}
	wrong := map[string][]int{}
	var addrs []string
	var unknown, public []string
	seenAddr := map[string]bool{}
	for _, s := range mine {
		a := s.Addr.String()
		if !seenAddr[a] {
			seenAddr[a] = true
			addrs = append(addrs, a)
			if !s.Addr.IsLoopback() {
				public = append(public, a)
			}
		}
		if len(s.Procs) == 0 {
			unknown = append(unknown, a)
		}
		for _, p := range s.Procs {
			name := p.Comm
			if name == "" {
				name = "pid"
			}
			if w.match(p) {
				if name != w.service {
					name = w.service + "/" + name // prosody/lua5.4, jitsi-videobridge/java
				}
				right[name] = appendUnique(right[name], p.PID)
			} else {
				wrong[name] = appendUnique(wrong[name], p.PID)
			}
		}
	}
	on := " on " + strings.Join(addrs, ", ")
	if len(wrong) > 0 {
		seen := label + " is held by " + describeProcs(wrong) + on
		if len(right) > 0 {
			seen += " (besides " + describeProcs(right) + ")"
		}
		return fail(w.id, w.title, seen, fmt.Sprintf("stop or reconfigure %s so that only %s holds %s (ss -lpn 'sport = :%d' shows it)",
			strings.Join(sortedKeys(wrong), ", "), w.service, label, w.port))
	}
	if len(right) == 0 {
		return warn(w.id, w.title, label+" is bound"+on+" but its owner is not visible",
			"run the doctor as root so it can see which process holds "+label+"; it should be "+w.service)
	}
	seen := label + ": " + describeProcs(right) + on
	if w.reach.IsValid() && !reaches(mine, w.reach) {
		return fail(w.id, w.title, seen+"; not reachable on "+w.reach.String(),
			fmt.Sprintf("make %s listen on %s (or on all interfaces and firewall it)", w.service, net.JoinHostPort(w.reach.String(), strconv.Itoa(w.port))))
	}
	if len(unknown) > 0 {
		seen += "; owner of " + strings.Join(unknown, ", ") + " not visible"
	}
	if w.loopbackOnly && len(public) > 0 {
		return warn(w.id, w.title, seen+"; reachable on non-loopback address(es) "+strings.Join(public, ", "),
			fmt.Sprintf("block %s from the Internet (e.g. 'ufw deny %d/tcp', or allow only the hosts running jicofo/jvb), or set c2s_interfaces = { \"127.0.0.1\", \"::1\" } in Prosody when everything runs on this host",
				label, w.port))
	}
	return pass(w.id, w.title, seen)
}

// reaches reports whether a socket accepts connections to addr: bound to it
// or to the unspecified address (IPv4 "0.0.0.0", or dual-stack "::").
func reaches(socks []Socket, addr netip.Addr) bool {
	for _, s := range socks {
		if s.Addr == addr || s.Addr.IsUnspecified() && (s.Addr.Is6() || addr.Is4()) {
			return true
		}
	}
	return false
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func describeProcs(m map[string][]int) string {
	var parts []string
	for _, name := range sortedKeys(m) {
		pids := m[name]
		sort.Ints(pids)
		ps := make([]string, len(pids))
		for i, p := range pids {
			ps[i] = strconv.Itoa(p)
		}
		if len(ps) > 4 {
			ps = append(ps[:4], "…")
		}
		parts = append(parts, name+" (pid "+strings.Join(ps, ",")+")")
	}
	return strings.Join(parts, ", ")
}
