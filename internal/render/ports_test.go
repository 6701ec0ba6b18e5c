package render

import (
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/ports"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

// TestFilesBindThePortModel: what the rendered files make the services
// bind is what the port model (validation, firewall, probes) says.
func TestFilesBindThePortModel(t *testing.T) {
	moved := func(d *spec.Deployment) {
		d.Prosody = spec.ProsodyListeners{C2SPort: 15222, HTTPPort: 15280, S2SPort: 5269, HTTPSPort: 5281}
		d.Web.HTTPSPort = 8443
		d.Videobridge.Websockets = true
	}
	for _, c := range []struct {
		name string
		mod  func(*spec.Deployment)
		want map[string][]string // file suffix -> lines
	}{
		{"defaults", func(*spec.Deployment) {}, map[string][]string{
			".cfg.lua":             {"c2s_ports = { 5222 }", "http_ports = { 5280 }", "https_ports = { }", "s2s_ports = { }"},
			"jicofo.conf":          {"port = 5222"},
			"DOMAIN.conf":          {"server 127.0.0.1:5280;", "listen 443 ssl http2;", "proxy_pass http://127.0.0.1:8888/conference-request/v1$1;"},
			"videobridge/jvb.conf": {"port = 8080"},
		}},
		{"moved", moved, map[string][]string{
			".cfg.lua":             {"c2s_ports = { 15222 }", "http_ports = { 15280 }", "https_ports = { 5281 }", "s2s_ports = { 5269 }"},
			"jicofo.conf":          {"port = 15222"},
			"DOMAIN.conf":          {"server 127.0.0.1:15280;", "listen 8443 ssl http2;", "proxy_pass http://127.0.0.1:9090/colibri-ws/"},
			"videobridge/jvb.conf": {"PORT = 15222", "port = 9090"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDeployment(c.mod)
			set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
			if err != nil {
				t.Fatal(err)
			}
			model := d.Ports()
			for suffix, lines := range c.want {
				suffix = strings.ReplaceAll(suffix, "DOMAIN", d.Domain)
				var f *File
				for i := range set.Files {
					if strings.HasSuffix(set.Files[i].Path, suffix) && set.Files[i].Kind != KindSymlink {
						f = &set.Files[i]
					}
				}
				if f == nil {
					t.Fatalf("no rendered file ends in %s", suffix)
				}
				for _, l := range lines {
					if !strings.Contains(string(f.Content), l) {
						t.Errorf("%s lacks %q", f.Path, l)
					}
				}
			}
			// and the model agrees with the files
			for id, port := range map[string]int{ports.ProsodyC2S: d.Prosody.C2SPort, ports.ProsodyHTTP: d.Prosody.HTTPPort,
				ports.NginxHTTPS: d.Web.HTTPSPort, ports.ProsodyS2S: d.Prosody.S2SPort} {
				if port == 0 && id != ports.ProsodyS2S {
					port = map[string]int{ports.ProsodyC2S: 5222, ports.ProsodyHTTP: 5280}[id]
				}
				if model.Port(id) != port {
					t.Errorf("model %s = %d, files %d", id, model.Port(id), port)
				}
			}
		})
	}
}

// TestNginxHashBucketSize: the thresholds measured with nginx 1.22 (two
// servers on one port, so the server name hash is built): 46 characters fit
// the default 64, 47-110 need 128, 111-238 need 256, longer 512.
func TestNginxHashBucketSize(t *testing.T) {
	for n, want := range map[int]int{10: 0, 46: 0, 47: 128, 110: 128, 111: 256, 238: 256, 239: 512, 253: 512} {
		if got := nginxHashBucketSize([]string{"x", strings.Repeat("a", n)}); got != want {
			t.Errorf("%d characters: %d, want %d", n, got, want)
		}
	}
}
