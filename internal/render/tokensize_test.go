package render

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// TestTokenSizeThroughNginxAndProsody sends the largest token jitsi-agent
// mints, with the longest room name and a browser's worth of headers,
// through the rendered nginx to a real Prosody (mod_websocket and mod_bosh
// on loopback), over HTTP/1.1 and HTTP/2, and requires Prosody's answer; a
// token twice that size gets nginx's 414, not a hang.
func TestTokenSizeThroughNginxAndProsody(t *testing.T) {
	nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	prosody := testenv.LookPath(t, "prosody", "apt-get install prosody")
	dir := t.TempDir()

	// Prosody with its HTTP services on loopback.
	httpPort := freePort(t)
	pcfg := fmt.Sprintf(`pidfile = %q
data_path = %q
run_as_root = true
daemonize = false
c2s_ports = { %d }
c2s_interfaces = { "127.0.0.1" }
http_ports = { %d }
http_interfaces = { "127.0.0.1" }
https_ports = { }
s2s_ports = { }
component_ports = { }
consider_websocket_secure = true
consider_bosh_secure = true
log = { info = %q }
modules_enabled = { "websocket", "bosh" }
VirtualHost "meet.example.com"
    authentication = "anonymous"
`, filepath.Join(dir, "prosody.pid"), dir, freePort(t), httpPort, filepath.Join(dir, "prosody.log"))
	pconf := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(pconf, []byte(pcfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, dir, prosody, "--config", pconf, "-F")

	// The rendered nginx site, on loopback, proxying to that Prosody.
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key)
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("JITSI-INDEX\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpsPort := freePort(t)
	d := newDeployment(everything, func(d *spec.Deployment) {
		d.TLS.Certificate, d.TLS.Key = cert, key
		d.Web.Root = www
		d.Web.HTTPPort, d.Web.HTTPSPort = freePort(t), httpsPort
		d.TLS.ACME.Listen = "127.0.0.1:1"
	})
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, set)
	site, _ := set.Lookup("/etc/nginx/sites-available/" + d.Domain + ".conf")
	content := string(site.Content)
	if !strings.Contains(content, "large_client_header_buffers 4 "+strconv.Itoa(token.ProsodyHeadLimit>>10)+"k;") {
		t.Fatalf("the site does not size large_client_header_buffers:\n%.600s", content)
	}
	content = strings.ReplaceAll(content, "/var/log/nginx/", dir+"/")
	content = strings.ReplaceAll(content, `"/etc/jitsi/meet/`, `"`+tree+`/etc/jitsi/meet/`)
	content = strings.ReplaceAll(content, "server 127.0.0.1:5280;", "server 127.0.0.1:"+strconv.Itoa(httpPort)+";")
	content = regexp.MustCompile(`(?m)^(\s*listen )\[::\]:`).ReplaceAllString(content, "${1}[::1]:")
	content = regexp.MustCompile(`(?m)^(\s*listen )(\d+)`).ReplaceAllString(content, "${1}127.0.0.1:$2")
	siteCopy := filepath.Join(dir, "site.conf")
	if err := os.WriteFile(siteCopy, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	conf := fmt.Sprintf("%spid %s;\nerror_log %s;\nevents {}\nhttp {\n%s    include /etc/nginx/mime.types;\n    include %s;\n}\n",
		user, nginxQ(t, filepath.Join(dir, "nginx.pid")), nginxQ(t, filepath.Join(dir, "error.log")), testenv.NginxTempPaths(dir), nginxQ(t, siteCopy))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	exited := startProc(t, dir, nginx, "-c", confPath, "-p", dir+"/", "-g", "daemon off; master_process off;")
	waitListen(t, exited, dir, "127.0.0.1:"+strconv.Itoa(httpsPort))
	waitListen(t, make(chan error, 1), dir, "127.0.0.1:"+strconv.Itoa(httpPort))

	// The longest room node (1023 bytes, a third of them percent escapes),
	// percent-encoded once more in the query, as a client may send it.
	node := strings.Repeat("%c3%a4", 170) + strings.Repeat("x", 1023-170*6)
	if len(node) != 1023 {
		t.Fatalf("node is %d bytes", len(node))
	}
	roomParam := url.QueryEscape(node)
	tok := func(n int) string {
		b := []byte(strings.Repeat("A", n))
		b[n/3], b[2*n/3] = '.', '.'
		return string(b)
	}
	// A browser's headers (about 1.5 KiB with a 600-byte cookie). Over
	// HTTP/1.1 the request is a real WebSocket handshake, which Prosody
	// answers with 101; HTTP/2 (no WebSocket in nginx 1.22) gets Prosody's
	// page for a plain GET.
	headers := map[string]string{
		"User-Agent":      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
		"Origin":          "https://" + d.Domain,
		"Accept-Language": "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7,fr;q=0.6",
		"Cache-Control":   "no-cache",
		"Pragma":          "no-cache",
		"Cookie":          "session=" + strings.Repeat("c", 600),
	}
	wsHeaders := map[string]string{
		"Connection":               "Upgrade",
		"Upgrade":                  "websocket",
		"Sec-WebSocket-Version":    "13",
		"Sec-WebSocket-Key":        "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
		"Sec-WebSocket-Protocol":   "xmpp",
	}
	nginxLimitCheck(t, "https://127.0.0.1:"+strconv.Itoa(httpsPort), d.Domain)
	for _, h2 := range []bool{false, true} {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: d.Domain}, ForceAttemptHTTP2: h2}}
		get := func(path string) (int, string, string) {
			t.Helper()
			req, err := http.NewRequest("GET", "https://127.0.0.1:"+strconv.Itoa(httpsPort)+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = d.Domain
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			if !h2 && strings.HasPrefix(path, "/xmpp-websocket") {
				for k, v := range wsHeaders {
					req.Header.Set(k, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil && h2 && strings.Contains(err.Error(), "ENHANCE_YOUR_CALM") {
				return 431, "HTTP/2.0", err.Error() // nginx refuses the oversized header block
			}
			if err != nil {
				b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
				e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("GET %.20s... (%d-byte URL, h2=%v): %v\nprosody.log:\n%s\nnginx error.log:\n%s", path, len(path), h2, errors.Unwrap(err), b, e)
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return resp.StatusCode, resp.Proto, "" // a WebSocket now: nothing to read
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			return resp.StatusCode, resp.Proto, string(b)
		}
		prosodyAnswer := func(path string, code int, body string) bool {
			if !h2 && strings.HasPrefix(path, "/xmpp-websocket") {
				return code == http.StatusSwitchingProtocols
			}
			return code == 200 && strings.Contains(body, "Prosody")
		}
		if path := "/xmpp-websocket?room=r&token=" + tok(100); true {
			if code, proto, body := get(path); !prosodyAnswer(path, code, body) {
				t.Fatalf("small token (%s): %d %.300q", proto, code, body)
			}
		}
		max := tok(token.MaxTokenBytes)
		for _, path := range []string{"/xmpp-websocket?room=" + roomParam + "&token=" + max, "/http-bind?room=" + roomParam + "&token=" + max} {
			code, proto, body := get(path)
			if !prosodyAnswer(path, code, body) {
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Errorf("%s with a %d-byte token (%s): %d %.300q\nnginx error.log:\n%s", path[:15], token.MaxTokenBytes, proto, code, body, b)
			}
		}
		if code, _, body := get("/" + url.PathEscape(node) + "?jwt=" + max); code != 200 || body != "JITSI-INDEX\n" {
			t.Errorf("meeting link with a %d-byte token: %d %.200q", token.MaxTokenBytes, code, body)
		}
		tooLong := "/xmpp-websocket?room=r&token=" + tok(2*token.ProsodyHeadLimit)
		if h2 {
			if code, proto, _ := get(tooLong); code != 414 && code != 431 {
				t.Errorf("a %d-byte token (%s): %d, want nginx's 414 or GOAWAY", 2*token.ProsodyHeadLimit, proto, code)
			}
		} else if code := rawStatus(t, "127.0.0.1:"+strconv.Itoa(httpsPort), d.Domain, tooLong, headers); code != 414 {
			t.Errorf("a %d-byte token (HTTP/1.1): %d, want nginx's 414", 2*token.ProsodyHeadLimit, code)
		}
	}
}

// nginxLimitCheck checks that nginx's and Prosody's limits meet: a request line just under Prosody's head limit (with few
// headers) reaches Prosody and is answered, one just over it gets nginx's
// 414 instead of hanging in Prosody.
func nginxLimitCheck(t *testing.T, base, host string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}}}
	for _, n := range []int{token.ProsodyHeadLimit - 300, token.ProsodyHeadLimit + 100} {
		path := "/http-bind?token="
		path += strings.Repeat("A", n-len("GET  HTTP/1.1")-len(path))
		if n > token.ProsodyHeadLimit {
			if code := rawStatus(t, strings.TrimPrefix(base, "https://"), host, path, nil); code != 414 {
				t.Errorf("%d-byte request line: %d, want 414", n, code)
			}
			continue
		}
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%d-byte request line: %v", n, errors.Unwrap(err))
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Prosody") {
			t.Errorf("%d-byte request line: %d, want 200 from Prosody", n, resp.StatusCode)
		}
	}
}

// rawStatus sends one HTTP/1.1 GET over TLS while already reading the
// answer, and returns its status. nginx answers an oversized request head
// with 414 and closes the connection with the rest of the head unread, so
// the kernel resets it; a client that only reads after it has written
// everything (net/http) then sees the reset, or the 414, depending on
// timing. Reading concurrently receives the 414 that arrived first.
func rawStatus(t *testing.T, addr, host, path string, headers map[string]string) int {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: host, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	type answer struct {
		code int
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			got <- answer{err: err}
			return
		}
		resp.Body.Close()
		got <- answer{code: resp.StatusCode}
	}()
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	for k, v := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("Connection: close\r\n\r\n")
	_, werr := io.WriteString(conn, req.String()) // a reset here is expected; the answer decides
	a := <-got
	if a.err != nil {
		t.Fatalf("GET %.30s... (%d bytes) over HTTP/1.1: no answer: %v (write: %v)", path, len(path), a.err, werr)
	}
	return a.code
}

// startProc starts a daemon in the foreground for the test and stops it
// (SIGTERM, then SIGKILL) at cleanup; the channel reports its exit.
func startProc(t *testing.T, dir, name string, args ...string) chan error {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		out.Close()
	})
	return exited
}
