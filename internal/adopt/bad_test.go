package adopt

import (
	"github.com/jitsi-agent/jitsi-agent/internal/adopt/adopttest"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		domain string
		want   []string
	}{
		{"nothing", map[string]string{}, "", []string{"no Jitsi configuration"}},
		{"two domains", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": `VirtualHost "a.example.com"`,
			"/etc/prosody/conf.avail/b.example.com.cfg.lua": `VirtualHost "b.example.com"`,
		}, "", []string{"2 domains", "a.example.com.cfg.lua:1", "b.example.com.cfg.lua:1", "--domain"}},
		{"missing file", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": `VirtualHost "a.example.com"`,
		}, "c.example.com", []string{"c.example.com.cfg.lua is missing"}},
		{"vhost in the main file", map[string]string{
			"/etc/prosody/prosody.cfg.lua":            "admins = { }\n\nVirtualHost \"a.example.com\"\n",
			"/etc/jitsi/meet/a.example.com-config.js": "var config = {};",
		}, "", []string{"/etc/prosody/prosody.cfg.lua:3", "conf.avail/a.example.com.cfg.lua"}},
		{"lua syntax", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": "VirtualHost \"a.example.com\"\n  modules_enabled = {\n \"bosh\"\n \"ping\" }\n",
		}, "", []string{"a.example.com.cfg.lua", "line:4"}},
		{"short app secret", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": "VirtualHost \"a.example.com\"\n  authentication = \"token\"\n  app_id = \"x\"\n  app_secret = \"tooshort\"\n",
		}, "", []string{"a.example.com.cfg.lua:4", "8 characters", "at least 32"}},
		{"hocon", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": `VirtualHost "a.example.com"`,
			"/etc/jitsi/jicofo/jicofo.conf":                 "jicofo {\n  xmpp {\n    client = { a = 1\n}\n",
		}, "", []string{"/etc/jitsi/jicofo/jicofo.conf:5", "unclosed object"}},
		{"hocon substitution", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": `VirtualHost "a.example.com"`,
			"/etc/jitsi/videobridge/jvb.conf":               "videobridge {\n  x = ${y}\n}\n",
		}, "", []string{"jvb.conf:2", "substitutions"}},
		{"config.js", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": `VirtualHost "a.example.com"`,
			"/etc/jitsi/meet/a.example.com-config.js":       "var config = {\n  hosts: {\n    domain: 'a.example.com',,\n  },\n};\n",
		}, "", []string{"a.example.com-config.js:", "Unexpected token"}},
		{"nginx", map[string]string{
			"/etc/prosody/conf.avail/a.example.com.cfg.lua": `VirtualHost "a.example.com"`,
			"/etc/jitsi/meet/a.example.com-config.js":       "var config = {};",
			"/etc/nginx/sites-available/a.example.com.conf": "server {\n  listen 443 ssl;\n  location / {\n    return 200;\n}\n",
		}, "", []string{"a.example.com.conf:6", "unexpected end of file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tc.files {
				adopttest.WriteFile(t, root, p, c, 0o644)
			}
			_, err := Import(Options{Root: root, Domain: tc.domain, Out: filepath.Join(t.TempDir(), "s.hcl")})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
