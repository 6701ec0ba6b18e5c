package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// The front's HAProxy configuration (/etc/haproxy/haproxy.cfg, the whole
// file Debian's haproxy.service reads) is checked with `haproxy -c` on a
// copy in which the certificate and CA files point at what the swap will
// leave in place: the desired content when the set deploys the file in the
// same apply (the front's certificate copy), the host's file under --root,
// else a throwaway self-signed pair (the certificate is issued after the
// first apply). Nothing else is changed, so line numbers match.

// HAProxyConfig is the front's configuration file.
const HAProxyConfig = "/etc/haproxy/haproxy.cfg"

func isHAProxyConfig(p string) bool { return p == HAProxyConfig }

// haproxyFileArg matches "crt PATH" and "ca-file PATH" arguments
// (@system-ca and other @-names are HAProxy's own).
var haproxyFileArg = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(\s)(crt|ca-file)\s+(/\S+)`)
})

func (t *txn) haproxyChecks(ctx context.Context, all []staged) []Failure {
	var cfgs []staged
	for _, s := range all {
		if s.runs(files.HAProxyC) {
			cfgs = append(cfgs, s)
		}
	}
	if len(cfgs) == 0 {
		return nil
	}
	haproxy := findTool("haproxy")
	if haproxy == "" {
		t.r.notice("haproxy not installed: %s not checked with haproxy -c (apt-get install haproxy)", cfgs[0].op.path)
		return nil
	}
	var fails []Failure
	for _, s := range cfgs {
		out, err := t.haproxyCheck(ctx, haproxy, s)
		if err != nil {
			fails = append(fails, Failure{s.op.path, "haproxy -c", out + "(" + err.Error() + ")"})
		}
		t.r.hook("check", s.op.dest)
	}
	return fails
}

func (t *txn) haproxyCheck(ctx context.Context, haproxy string, s staged) (string, error) {
	dir, err := t.r.checkTemp("haproxy-*")
	if err != nil {
		return "", fmt.Errorf("haproxy check: %w", err)
	}
	defer os.RemoveAll(dir)
	content, err := os.ReadFile(s.real)
	if err != nil {
		return "", fmt.Errorf("haproxy check: %w", err)
	}
	cfg, err := t.haproxyRewrite(string(content), dir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("haproxy check: %w", err)
	}
	out, err := t.exec(ctx, "", haproxy, "-c", "-f", p)
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.Contains(l, "[NOTICE]") { // version and executable path
			lines = append(lines, l)
		}
	}
	msg := strings.ReplaceAll(strings.Join(lines, "\n"), p, s.op.dest+" (staged)")
	msg = strings.ReplaceAll(msg, dir, "<check dir>")
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	return msg, err
}

// haproxyRewrite points crt and ca-file arguments at checkable files.
func (t *txn) haproxyRewrite(cfg, dir string) (string, error) {
	var placeholder [2]string
	var perr error
	n := 0
	out := haproxyFileArg().ReplaceAllStringFunc(cfg, func(m string) string {
		sub := haproxyFileArg().FindStringSubmatch(m)
		sp, name, p := sub[1], sub[2], sub[3]
		if t.set != nil {
			if f, ok := t.set.Lookup(p); ok && f.Kind != render.KindSymlink {
				n++
				cp := filepath.Join(dir, fmt.Sprintf("managed-%d.pem", n))
				if err := os.WriteFile(cp, f.Content, 0o600); err != nil && perr == nil {
					perr = err
				}
				if key, ok := t.set.Lookup(p + ".key"); ok && name == "crt" {
					if err := os.WriteFile(cp+".key", key.Content, 0o600); err != nil && perr == nil {
						perr = err
					}
				}
				return sp + name + " " + cp
			}
		}
		if real := t.r.host.Real(p); fileExists(real) {
			return sp + name + " " + real
		}
		if placeholder[0] == "" {
			placeholder, perr = selfSigned(dir)
			if perr == nil {
				// HAProxy loads the key beside the chain (crt.key).
				b, err := os.ReadFile(placeholder[1])
				if err == nil {
					err = os.WriteFile(placeholder[0]+".key", b, 0o600)
				}
				perr = err
			}
		}
		return sp + name + " " + placeholder[0]
	})
	if perr != nil {
		return "", fmt.Errorf("haproxy check: %w", perr)
	}
	return out, nil
}
