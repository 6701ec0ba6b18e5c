package adopt

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/firewall"
)

// Paths of the Debian quick-install layout (and jitsi-agent's own, which
// keeps the same paths except coturn's file behind /etc/turnserver.conf).
const (
	pathJicofo       = "/etc/jitsi/jicofo/jicofo.conf"
	pathJicofoLegacy = "/etc/jitsi/jicofo/sip-communicator.properties"
	pathJicofoShell  = "/etc/jitsi/jicofo/config"
	pathJVB          = "/etc/jitsi/videobridge/jvb.conf"
	pathJVBLegacy    = "/etc/jitsi/videobridge/sip-communicator.properties"
	pathTURN         = "/etc/turnserver.conf"
	pathTURNAgent    = "/etc/coturn/turnserver.conf"
	pathProsodyMain  = "/etc/prosody/prosody.cfg.lua"
	pathJibri        = "/etc/jitsi/jibri/jibri.conf"
)

func prosodyPath(domain string) string  { return "/etc/prosody/conf.avail/" + domain + ".cfg.lua" }
func configJSPath(domain string) string { return "/etc/jitsi/meet/" + domain + "-config.js" }
func nginxPath(domain string) string    { return "/etc/nginx/sites-available/" + domain + ".conf" }

// hostFiles is everything read from the host. A nil field means the file
// does not exist.
type hostFiles struct {
	root   string
	domain string

	prosody      *prosodyConfig
	jicofo       *hoconDoc
	jicofoLegacy *lineFile // sip-communicator.properties
	jicofoShell  *lineFile // /etc/jitsi/jicofo/config
	jvb          *hoconDoc
	jvbLegacy    *lineFile
	jibri        *hoconDoc
	configJS     *jsConfig
	nginx        *ngxFile
	turn         *lineFile
	turnPath     string          // which turnserver.conf was read
	firewall     *firewall.Rules // the agent's own ruleset, read back

	raw map[string][]byte // path -> contents, for the report and extras
}

// readHostFile reads a regular file (following links) under root, at most
// maxInputSize bytes. A missing file returns (nil, nil).
func readHostFile(root, p string) ([]byte, error) {
	full := filepath.Join(root, p)
	f, err := os.Open(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if st.Size() > maxInputSize {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d-byte limit", p, st.Size(), maxInputSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(b) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit", p, maxInputSize)
	}
	return b, nil
}

// findDomains lists the Jitsi domains configured under root: Prosody vhost
// files in conf.avail (jitsi-meet-prosody writes DOMAIN.cfg.lua) and
// config.js files in /etc/jitsi/meet (DOMAIN-config.js).
func findDomains(root string) (map[string]string, error) {
	out := map[string]string{}
	add := func(dir, suffix string, skip ...string) error {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		for _, e := range ents {
			n := e.Name()
			if !strings.HasSuffix(n, suffix) {
				continue
			}
			d := strings.TrimSuffix(n, suffix)
			if d == "" || slicesContains(skip, d) || !strings.Contains(d, ".") {
				continue
			}
			if _, ok := out[d]; !ok {
				out[d] = filepath.Join(dir, n)
			}
		}
		return nil
	}
	if err := add("/etc/prosody/conf.avail", ".cfg.lua", "jaas", "localhost", "example.com"); err != nil {
		return nil, err
	}
	if err := add("/etc/jitsi/meet", "-config.js"); err != nil {
		return nil, err
	}
	return out, nil
}

func slicesContains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// readHost reads and parses every file of the domain under root.
func readHost(root, domain string) (*hostFiles, error) {
	if domain == "" {
		ds, err := findDomains(root)
		if err != nil {
			return nil, err
		}
		switch len(ds) {
		case 0:
			// a videobridge-only host knows its domain from jvb.conf
			b, err := readHostFile(root, pathJVB)
			if err != nil {
				return nil, err
			}
			if b != nil {
				doc, err := parseHOCON(pathJVB, b)
				if err != nil {
					return nil, err
				}
				if d, ok := doc.str(shardKey("DOMAIN")); ok && strings.HasPrefix(d, "auth.") {
					domain = strings.TrimPrefix(d, "auth.")
				}
			}
			if domain == "" {
				return nil, fmt.Errorf("no Jitsi configuration under %s: found neither /etc/prosody/conf.avail/DOMAIN.cfg.lua, /etc/jitsi/meet/DOMAIN-config.js nor %s (is this the right --root?)", root, pathJVB)
			}
		case 1:
			for d := range ds {
				domain = d
			}
		default:
			names := sortedKeys(ds)
			var where []string
			for _, n := range names {
				where = append(where, fmt.Sprintf("%s:1: %s", ds[n], n))
			}
			return nil, fmt.Errorf("%d domains are configured on this host:\n  %s\nchoose one with --domain (one spec describes one domain)", len(ds), strings.Join(where, "\n  "))
		}
	}
	if strings.ContainsAny(domain, "/\\ \t\n\"'$") || strings.Contains(domain, "..") || !strings.Contains(domain, ".") {
		return nil, fmt.Errorf("--domain %q is not a host name", domain)
	}
	h := &hostFiles{root: root, domain: domain, raw: map[string][]byte{}}
	read := func(p string) ([]byte, error) {
		b, err := readHostFile(root, p)
		if err != nil {
			return nil, err
		}
		if b != nil {
			h.raw[p] = b
		}
		return b, nil
	}
	var err error
	if b, e := read(prosodyPath(domain)); e != nil {
		return nil, e
	} else if b != nil {
		if h.prosody, err = parseProsody(prosodyPath(domain), b); err != nil {
			return nil, err
		}
		if h.prosody.section(domain) == nil || h.prosody.section(domain).Kind != "host" {
			return nil, fmt.Errorf("%s:1: no VirtualHost %q in this file; is --domain right?", prosodyPath(domain), domain)
		}
	}
	if b, e := read(pathJicofo); e != nil {
		return nil, e
	} else if b != nil {
		if h.jicofo, err = parseHOCON(pathJicofo, b); err != nil {
			return nil, err
		}
	}
	if b, e := read(pathJibri); e != nil {
		return nil, e
	} else if b != nil {
		if h.jibri, err = parseHOCON(pathJibri, b); err != nil {
			return nil, err
		}
	}
	if b, e := read(pathJicofoLegacy); e != nil {
		return nil, e
	} else if b != nil {
		if h.jicofoLegacy, err = parseProperties(pathJicofoLegacy, b); err != nil {
			return nil, err
		}
	}
	if b, e := read(pathJicofoShell); e != nil {
		return nil, e
	} else if b != nil {
		if h.jicofoShell, err = parseShellVars(pathJicofoShell, b); err != nil {
			return nil, err
		}
	}
	if b, e := read(pathJVB); e != nil {
		return nil, e
	} else if b != nil {
		if h.jvb, err = parseHOCON(pathJVB, b); err != nil {
			return nil, err
		}
	}
	if b, e := read(pathJVBLegacy); e != nil {
		return nil, e
	} else if b != nil {
		if h.jvbLegacy, err = parseProperties(pathJVBLegacy, b); err != nil {
			return nil, err
		}
	}
	if b, e := read(configJSPath(domain)); e != nil {
		return nil, e
	} else if b != nil {
		if h.configJS, err = parseConfigJS(configJSPath(domain), b); err != nil {
			return nil, err
		}
	}
	if b, e := read(nginxPath(domain)); e != nil {
		return nil, e
	} else if b != nil {
		if h.nginx, err = parseNginx(nginxPath(domain), b); err != nil {
			return nil, err
		}
	}
	for _, p := range []string{pathTURNAgent, pathTURN} {
		b, e := read(p)
		if e != nil {
			return nil, e
		}
		if b != nil {
			if h.turn, err = parseCoturn(p, b); err != nil {
				return nil, err
			}
			h.turnPath = p
			if p == pathTURNAgent {
				delete(h.raw, pathTURN) // the link to it
			}
			break
		}
	}
	if err := readFirewall(h); err != nil {
		return nil, err
	}
	if h.prosody == nil {
		// Old installs configured the domain in Prosody's main file.
		if b, err := readHostFile(root, pathProsodyMain); err == nil && b != nil {
			want := `VirtualHost "` + domain + `"`
			for i, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), want) {
					return nil, fmt.Errorf("%s:%d: %s is configured in Prosody's main file; import reads %s (the jitsi-meet-prosody layout): move that VirtualHost and its Components there, Include it from the main file, and run import again", pathProsodyMain, i+1, domain, prosodyPath(domain))
				}
			}
		}
	}
	if h.prosody == nil && h.jvb == nil && h.jicofo == nil && h.configJS == nil && h.nginx == nil {
		return nil, fmt.Errorf("no configuration for %s under %s: %s is missing (is --domain right?)", domain, root, prosodyPath(domain))
	}
	// The components that need each other on one host.
	if h.prosody != nil && h.configJS == nil && h.nginx != nil {
		return nil, fmt.Errorf("%s is missing: nginx serves it for %s (restore it from the jitsi-meet-web-config package, or remove the nginx site)", configJSPath(domain), domain)
	}
	return h, nil
}

func shardKey(k string) string { return "videobridge.apis.xmpp-client.configs.shard." + k }

// files lists the paths read, sorted.
func (h *hostFiles) files() []string {
	out := sortedKeys(h.raw)
	sort.Strings(out)
	return out
}
