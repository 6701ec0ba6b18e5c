package render

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// TestNginxServes starts a real nginx on loopback high ports with the
// rendered site of the largest deployment and checks what the template
// promises: config.js through SSI (with and without a tenant), room URLs,
// the HTTP->HTTPS redirect, the ACME challenge proxy, and tokens kept out of
// the access log.
func TestNginxServes(t *testing.T) {
	nginx := testenv.LookPath(t, "nginx", "apt-get install nginx-light")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key)
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(www, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("JITSI-INDEX\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "static", "app.css"), []byte("body{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The ACME challenge listener nginx proxies to.
	acme, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acmeSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "challenge %s host=%s", r.URL.Path, r.Host)
	})}
	go func() { _ = acmeSrv.Serve(acme) }()
	t.Cleanup(func() { _ = acmeSrv.Close() })

	pp := testenv.FreePorts(t, testenv.TCP, 2)
	httpPort, httpsPort := pp[0], pp[1]
	d := newDeployment(everything, func(d *spec.Deployment) {
		d.TLS.Certificate, d.TLS.Key = cert, key
		d.Web.Root = www
		d.Web.HTTPPort, d.Web.HTTPSPort = httpPort, httpsPort
		d.TLS.ACME.Listen = acme.Addr().String()
	})
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, set)
	site, _ := set.Lookup("/etc/nginx/sites-available/" + d.Domain + ".conf")
	content := string(site.Content)
	// Test copy: logs here, config.js from the rendered tree, and listening
	// on loopback only.
	content = strings.ReplaceAll(content, "/var/log/nginx/", dir+"/")
	content = strings.ReplaceAll(content, `"/etc/jitsi/meet/`, `"`+tree+`/etc/jitsi/meet/`)
	content = regexp.MustCompile(`(?m)^(\s*listen )\[::\]:`).ReplaceAllString(content, "${1}[::1]:")
	content = regexp.MustCompile(`(?m)^(\s*listen )(\d+)`).ReplaceAllString(content, "${1}127.0.0.1:$2")
	siteCopy := filepath.Join(dir, "site.conf")
	if err := os.WriteFile(siteCopy, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers must read the 0700 temp dirs
	}
	conf := fmt.Sprintf("%spid %s;\nerror_log %s;\nevents {}\nhttp {\n%s    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n    include %s;\n}\n",
		user, nginxQ(t, filepath.Join(dir, "nginx.pid")), nginxQ(t, filepath.Join(dir, "error.log")), testenv.NginxTempPaths(dir), nginxQ(t, siteCopy))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", confPath, "-p", dir+"/", "-g", "daemon off; master_process off;")
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	https := "https://127.0.0.1:" + strconv.Itoa(httpsPort)
	httpURL := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	waitListen(t, exited, dir, "127.0.0.1:"+strconv.Itoa(httpsPort))

	client := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: d.Domain}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(url, referer string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = d.Domain
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	code, _, body := get(https+"/config.js", "")
	if code != 200 || !strings.Contains(body, "var subdir = '';") || !strings.Contains(body, "var subdomain = '';") || strings.Contains(body, "<!--#") {
		t.Errorf("/config.js: %d\n%.400s", code, body)
	}
	code, _, body = get(https+"/acme/config.js", "")
	if code != 200 || !strings.Contains(body, "var subdir = 'acme/';") || !strings.Contains(body, "var subdomain = 'acme.';") {
		t.Errorf("/acme/config.js: %d\n%.400s", code, body)
	}
	const tok, ref = "TOKEN-MUST-NOT-BE-LOGGED", "REFERER-TOKEN-MUST-NOT-BE-LOGGED"
	code, _, body = get(https+"/weeklysync?jwt="+tok, "https://"+d.Domain+"/weeklysync?jwt="+ref)
	if code != 200 || body != "JITSI-INDEX\n" {
		t.Errorf("room URL: %d %q", code, body)
	}
	code, _, body = get(https+"/acme/weeklysync?token="+tok, "")
	if code != 200 || body != "JITSI-INDEX\n" {
		t.Errorf("tenant room URL: %d %q", code, body)
	}
	code, hdr, _ := get(https+"/static/app.css?v=1", "")
	if code != 200 || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("static file: %d %v", code, hdr)
	}
	if hdr.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS header")
	}
	code, hdr, _ = get(httpURL+"/weeklysync", "")
	if want := "https://" + d.Domain + ":" + strconv.Itoa(httpsPort) + "/weeklysync"; code != 301 || hdr.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 301 %q", code, hdr.Get("Location"), want)
	}
	code, _, body = get(httpURL+"/.well-known/acme-challenge/abc123", "")
	if code != 200 || body != "challenge /.well-known/acme-challenge/abc123 host="+d.Domain {
		t.Errorf("ACME proxy: %d %q", code, body)
	}

	// nginx writes a request's log line after it sent the response: wait
	// (bounded) for the lines of the requests that carried tokens.
	var log string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		logb, err := os.ReadFile(filepath.Join(dir, "access.log"))
		if err != nil {
			t.Fatal(err)
		}
		log = string(logb)
		if strings.Count(log, "[redacted]") >= 3 && strings.Contains(log, "/weeklysync?[redacted]") || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(log, tok) || strings.Contains(log, ref) {
		t.Errorf("a token reached the access log:\n%s", log)
	}
	if strings.Count(log, "[redacted]") < 3 || !strings.Contains(log, "/weeklysync?[redacted]") {
		t.Errorf("access log lacks the redacted entries:\n%s", log)
	}
}

func waitListen(t *testing.T, exited chan error, dir, addr string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			s, _ := os.ReadFile(filepath.Join(dir, "stdout"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, b, s)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}
