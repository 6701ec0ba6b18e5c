package apply

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// nginx site files are checked with `nginx -t` against a throwaway main
// config that includes a copy of the staged site:
//   - include paths resolve under --root; included files that are in the
//     set are checked with their desired content;
//   - ssl_* files missing on the host (the certificate is issued after the
//     first apply) are replaced by a throwaway self-signed pair;
//   - access_log/error_log go to the temporary directory, so a check never
//     creates log files on the host.
// Each directive is rewritten on its own line, so line numbers in nginx's
// messages match the staged file.

var nginxSiteDirs = []string{"/etc/nginx/sites-available/", "/etc/nginx/sites-enabled/", "/etc/nginx/conf.d/"}

func isNginxSite(p string) bool {
	for _, d := range nginxSiteDirs {
		if strings.HasPrefix(p, d) && !strings.Contains(p[len(d):], "/") {
			return true
		}
	}
	return false
}

var nginxPathDirective = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^([ \t]*)(ssl_certificate|ssl_certificate_key|ssl_trusted_certificate|ssl_client_certificate|ssl_dhparam|include|access_log|error_log)[ \t]+("[^"\n]*"|'[^'\n]*'|[^\s;]+)([^;\n]*);`)
}) // compiled on first use, not at every start

func (t *txn) nginxChecks(ctx context.Context, files []staged) []Failure {
	var sites []staged
	for _, s := range files {
		if s.op.kind != render.KindSymlink && isNginxSite(s.op.dest) {
			sites = append(sites, s)
		}
	}
	if len(sites) == 0 {
		return nil
	}
	nginx := findTool("nginx")
	if nginx == "" {
		t.r.notice("nginx not installed: %d site file(s) not checked with nginx -t (apt-get install nginx-light)", len(sites))
		return nil
	}
	var fails []Failure
	for _, s := range sites {
		out, err := t.nginxCheck(ctx, nginx, s)
		if err != nil {
			fails = append(fails, Failure{s.op.path, "nginx -t", out + "(" + err.Error() + ")"})
		}
		t.r.hook("check", s.op.dest)
	}
	return fails
}

func (t *txn) nginxCheck(ctx context.Context, nginx string, s staged) (string, error) {
	dir, err := t.r.checkTemp("nginx-*")
	if err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	defer os.RemoveAll(dir)
	content, err := os.ReadFile(s.real)
	if err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	site, err := t.nginxRewrite(string(content), dir)
	if err != nil {
		return "", err
	}
	sitePath := filepath.Join(dir, "site.conf")
	main := fmt.Sprintf("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n    include %s;\n}\n", dir, dir, sitePath)
	if err := os.WriteFile(sitePath, []byte(site), 0o600); err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600); err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	out, err := t.exec(ctx, "", nginx, "-t", "-q", "-p", dir+"/", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	msg := strings.ReplaceAll(string(out), sitePath, s.op.dest+" (staged)")
	msg = strings.ReplaceAll(msg, dir, "<check dir>")
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	return msg, err
}

func (t *txn) nginxRewrite(site, dir string) (string, error) {
	var placeholder [2]string
	var perr error
	n := 0
	desired := func(p string) (render.File, bool) {
		if t.set == nil {
			return render.File{}, false
		}
		f, ok := t.set.Lookup(p)
		return f, ok && f.Kind != render.KindSymlink
	}
	out := nginxPathDirective().ReplaceAllStringFunc(site, func(line string) string {
		m := nginxPathDirective().FindStringSubmatch(line)
		indent, name, arg, rest := m[1], m[2], m[3], m[4]
		p := strings.Trim(arg, `"'`)
		if strings.Contains(p, "$") || strings.HasPrefix(p, "data:") {
			return line
		}
		switch name {
		case "access_log":
			return indent + "access_log off;"
		case "error_log":
			return indent + "error_log " + filepath.Join(dir, "error.log") + ";"
		}
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join("/etc/nginx", p)
		}
		if f, ok := desired(abs); ok {
			n++
			cp := filepath.Join(dir, fmt.Sprintf("managed-%d", n))
			if err := os.WriteFile(cp, f.Content, 0o600); err != nil && perr == nil {
				perr = err
			}
			return indent + name + " " + quote(cp) + rest + ";"
		}
		real := t.r.host.Real(abs)
		if name == "include" {
			return indent + name + " " + quote(real) + rest + ";"
		}
		if _, err := os.Stat(real); err == nil {
			return indent + name + " " + quote(real) + rest + ";"
		}
		if name == "ssl_dhparam" {
			return indent + "# ssl_dhparam: file missing on the host, not checked"
		}
		if placeholder[0] == "" {
			placeholder, perr = selfSigned(dir)
		}
		if name == "ssl_certificate_key" {
			return indent + name + " " + quote(placeholder[1]) + ";"
		}
		return indent + name + " " + quote(placeholder[0]) + ";"
	})
	if perr != nil {
		return "", fmt.Errorf("nginx check: %w", perr)
	}
	return out, nil
}

func quote(p string) string { return `"` + p + `"` }

// selfSigned writes a throwaway P-256 certificate and key into dir.
func selfSigned(dir string) ([2]string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return [2]string{}, err
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jitsi-agent nginx check"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(0, 0).Add(100 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return [2]string{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return [2]string{}, err
	}
	crt, kp := filepath.Join(dir, "placeholder.crt"), filepath.Join(dir, "placeholder.key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return [2]string{}, err
	}
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return [2]string{}, err
	}
	return [2]string{crt, kp}, nil
}
