// Package adopttest lays out what the Debian quick install writes for a
// domain: test material for jitsi-agent import, shared by internal/adopt
// and the command's tests.
package adopttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The quick install, reproduced: the Debian packages' postinst scripts copy
// the examples in jitsi-meet/doc/debian (and the web client's config.js)
// and substitute the domain and secrets with sed; jicofo's and the
// videobridge's postinst write their HOCON files. The functions below do
// what those scripts do, step by step, on the upstream files.

const (
	Domain        = "meet.example.org"
	FocusPassword = "FocusPw1234abcd"  // generateRandomPassword: 16 of [a-zA-Z0-9]
	JVBPassword   = "JvbPw5678"        // jvb postinst: 8 random characters
	TURNSecret    = "TurnSecret9012xy" // generateRandomPassword
	Nickname      = "3f1e5c2a-9b7d-4e11-8a2f-6c0d9e8b7a65"
	AppID         = "example_app"
	AppSecret     = "cb5749cbb72ab5a8379329e88461cb01233a"
)

// UpstreamDir finds ../shared/upstream (next to the repository, as on the
// developers' machines and in CI).
func UpstreamDir(t testing.TB) string {
	t.Helper()
	return testenv.Upstream(t, "jitsi-meet/doc/debian")
}

func readUp(t testing.TB, up, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(up, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WriteFile writes a file under root, creating its directories.
func WriteFile(t testing.TB, root, p, content string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// QuickInstall lays out what the packages write for Domain; tokens adds
// jitsi-meet-tokens' edits.
func QuickInstall(t testing.TB, tokens bool) string {
	t.Helper()
	up := UpstreamDir(t)
	root := t.TempDir()

	// jitsi-meet-prosody.postinst
	p := readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet-prosody/prosody.cfg.lua-jvb.example")
	p = strings.ReplaceAll(p, "jitmeet.example.com", Domain)
	p = strings.ReplaceAll(p, "focusUser", "focus")
	p = strings.ReplaceAll(p, "__turnSecret__", TURNSecret)
	if !strings.Contains(p, `--"polls";`) {
		p = strings.ReplaceAll(p, `"polls";`, `--"polls";`)
	}
	// the auth domain's certificate (sed on VirtualHost "auth.DOMAIN")
	auth := "auth." + Domain
	p = strings.Replace(p, `VirtualHost "`+auth+`"`, `VirtualHost "`+auth+`"`+"\n    ssl = {\n        key = \"/etc/prosody/certs/"+auth+".key\";\n        certificate = \"/etc/prosody/certs/"+auth+".crt\";\n    }", 1)
	if tokens { // jitsi-meet-tokens.postinst
		p = strings.ReplaceAll(p, `authentication = "jitsi-anonymous" -- do not delete me`, `authentication = "token" -- do not delete me`)
		p = strings.ReplaceAll(p, ` --app_id="example_app_id"`, ` app_id="`+AppID+`"`)
		p = strings.ReplaceAll(p, ` --app_secret="example_app_secret"`, ` app_secret="`+AppSecret+`"`)
		p = regexp.MustCompile(`(?m)^(\s*)--\s*("token_verification")`).ReplaceAllString(p, `$1$2`)
	}
	cfg := "/etc/prosody/conf.avail/" + Domain + ".cfg.lua"
	WriteFile(t, root, cfg, p, 0o644)
	if err := os.MkdirAll(filepath.Join(root, "/etc/prosody/conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cfg, filepath.Join(root, "/etc/prosody/conf.d/"+Domain+".cfg.lua")); err != nil {
		t.Fatal(err)
	}
	jaas := strings.ReplaceAll(readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet-prosody/jaas.cfg.lua"), "jitmeet.example.com", Domain)
	WriteFile(t, root, "/etc/prosody/conf.avail/jaas.cfg.lua", jaas, 0o644)

	// jicofo.postinst: an empty jicofo.conf, then `hocon -f set` for each
	// key (pyhocon rewrites the file in its own layout).
	WriteFile(t, root, "/etc/jitsi/jicofo/jicofo.conf", `jicofo {
  xmpp {
    client {
      client-proxy = "focus.`+Domain+`"
      xmpp-domain = "`+Domain+`"
      domain = "auth.`+Domain+`"
      username = "focus"
      password = "`+FocusPassword+`"
    }
    trusted-domains = [
      "recorder.`+Domain+`"
    ]
  }
  bridge {
    brewery-jid = "JvbBrewery@internal.auth.`+Domain+`"
  }
}
`, 0o640)

	// jitsi-videobridge2.postinst: the default HOCON config (echo).
	WriteFile(t, root, "/etc/jitsi/videobridge/jvb.conf", `videobridge {
    apis.xmpp-client.configs {
        shard {
            HOSTNAME=localhost
            DOMAIN="auth.`+Domain+`"
            USERNAME=jvb
            PASSWORD="`+JVBPassword+`"
            MUC_JIDS="jvbbrewery@internal.auth.`+Domain+`"
            MUC_NICKNAME=`+Nickname+`
        }
    }
}
ice4j {
    harvest {
        mapping {
            aws {
                enabled = false
            }
            stun {
                addresses = ["meet-jit-si-turnrelay.jitsi.net:443"]
            }
        }
    }
}
`, 0o640)

	// jitsi-meet-web-config.postinst (nginx chosen: FORCE_NGINX=true)
	js := readUp(t, up, "jitsi-meet/config.js")
	js = strings.ReplaceAll(js, "conference.jitsi-meet.example.com", `conference.<!--# echo var="subdomain" default="" -->jitsi-meet.example.com`)
	js = strings.ReplaceAll(js, "jitsi-meet.example.com", Domain)
	WriteFile(t, root, "/etc/jitsi/meet/"+Domain+"-config.js", js, 0o644)
	ngx := strings.ReplaceAll(readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet/jitsi-meet.example"), "jitsi-meet.example.com", Domain)
	site := "/etc/nginx/sites-available/" + Domain + ".conf"
	WriteFile(t, root, site, ngx, 0o644)
	if err := os.MkdirAll(filepath.Join(root, "/etc/nginx/sites-enabled"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(site, filepath.Join(root, "/etc/nginx/sites-enabled/"+Domain+".conf")); err != nil {
		t.Fatal(err)
	}

	// jitsi-meet-turnserver.postinst
	turn := readUp(t, up, "jitsi-meet/doc/debian/jitsi-meet-turn/turnserver.conf")
	turn = strings.ReplaceAll(turn, "jitsi-meet.example.com", Domain)
	turn = strings.ReplaceAll(turn, "__turnSecret__", TURNSecret)
	WriteFile(t, root, "/etc/turnserver.conf", turn, 0o644)
	return root
}

// HandEdited is the quick install with jitsi-meet-tokens and hand edits: a
// changed muc_max_occupants with its module, an unknown module, start muted
// and display name in config.js, a custom nginx location.
func HandEdited(t testing.TB) string {
	t.Helper()
	root := QuickInstall(t, true)
	cfg := filepath.Join(root, "/etc/prosody/conf.avail/"+Domain+".cfg.lua")
	b, _ := os.ReadFile(cfg)
	p := string(b)
	// a changed muc_max_occupants (with its module) and an unknown module
	p = strings.Replace(p, `        "muc_password_whitelist";
    }
    admins = { "focus@auth.`+Domain+`" }`, `        "muc_password_whitelist";
        "muc_max_occupants";
        "my_custom_module";
    }
    muc_max_occupants = 30
    admins = { "focus@auth.`+Domain+`" }`, 1)
	if !strings.Contains(p, "my_custom_module") {
		t.Fatal("fixture edit did not apply")
	}
	os.WriteFile(cfg, []byte(p), 0o644)
	// config.js: lobby and breakout stay on; start muted, display name
	js := filepath.Join(root, "/etc/jitsi/meet/"+Domain+"-config.js")
	b, _ = os.ReadFile(js)
	os.WriteFile(js, append(b, []byte("\nconfig.startWithAudioMuted = true;\nconfig.requireDisplayName = true;\n")...), 0o644)
	// nginx: a custom location in the HTTPS server
	site := filepath.Join(root, "/etc/nginx/sites-available/"+Domain+".conf")
	b, _ = os.ReadFile(site)
	s := strings.Replace(string(b), "    location = /xmpp-websocket {", "    location /custom/ {\n        return 204;\n    }\n\n    location = /xmpp-websocket {", 1)
	if !strings.Contains(s, "/custom/") {
		t.Fatal("nginx fixture edit did not apply")
	}
	os.WriteFile(site, []byte(s), 0o644)

	return root
}

// Certificates adds what the packages generate for TLS: a self-signed
// certificate for nginx at /etc/jitsi/meet/DOMAIN.{crt,key}
// (jitsi-meet-web-config, openssl req -x509), and Prosody's certificates
// for DOMAIN and auth.DOMAIN in /var/lib/prosody linked from
// /etc/prosody/certs (jitsi-meet-prosody, prosodyctl cert generate; the
// links are relative here so they stay inside root).
func Certificates(t testing.TB, root, openssl string) {
	t.Helper()
	gen := func(crt, key, cn string) {
		for _, p := range []string{crt, key} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(openssl, "req", "-new", "-newkey", "rsa:2048", "-days", "3650", "-nodes", "-x509",
			"-subj", "/O=localdomain/OU=localhost/CN="+cn, "-keyout", filepath.Join(root, key), "-out", filepath.Join(root, crt)).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl: %v\n%s", err, out)
		}
	}
	gen("/etc/jitsi/meet/"+Domain+".crt", "/etc/jitsi/meet/"+Domain+".key", Domain)
	for _, name := range []string{Domain, "auth." + Domain} {
		gen("/var/lib/prosody/"+name+".crt", "/var/lib/prosody/"+name+".key", name)
		if err := os.MkdirAll(filepath.Join(root, "/etc/prosody/certs"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{".crt", ".key"} {
			if err := os.Symlink("../../../var/lib/prosody/"+name+ext, filepath.Join(root, "/etc/prosody/certs", name+ext)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
