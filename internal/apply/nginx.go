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
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// nginx site files are checked with `nginx -t` in the shape nginx will
// load them: the host's own /etc/nginx/nginx.conf (its user line, http
// settings, modules), with the sites-enabled and conf.d includes expanded
// to the desired versions of the managed files plus the host's other
// files; without a main config on the host (containers, --root trees) a
// throwaway one that includes a copy of the staged site. In both:
//   - pid, error logs and the client body/proxy/fastcgi/uwsgi/scgi temp
//     directories go to the check's temporary directory, so a check writes
//     nothing on the host (with a user line nginx -t would otherwise create
//     and chown /var/lib/nginx/*, which ProtectSystem=strict refuses);
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
	return regexp.MustCompile(`(?m)^([ \t]*)(ssl_certificate|ssl_certificate_key|ssl_trusted_certificate|ssl_client_certificate|ssl_dhparam|include|access_log|error_log|pid|client_body_temp_path|proxy_temp_path|fastcgi_temp_path|uwsgi_temp_path|scgi_temp_path)[ \t]+("[^"\n]*"|'[^'\n]*'|[^\s;]+)([^;\n]*);`)
}) // compiled on first use, not at every start

// nginxTempDirs are the http temp path directives and their module.
var nginxTempDirs = []struct{ directive, module string }{
	{"client_body_temp_path", ""},
	{"proxy_temp_path", "http_proxy_module"},
	{"fastcgi_temp_path", "http_fastcgi_module"},
	{"uwsgi_temp_path", "http_uwsgi_module"},
	{"scgi_temp_path", "http_scgi_module"},
}

var nginxHTTPBlock = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^([ \t]*http[ \t]*\{)`)
})

func (t *txn) nginxChecks(ctx context.Context, all []staged) []Failure {
	var sites []staged
	for _, s := range all {
		if s.runs(files.NginxT) {
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
	if main := t.r.host.Real("/etc/nginx/nginx.conf"); fileExists(main) {
		out, err := t.nginxCheckMain(ctx, nginx, main)
		for _, s := range sites {
			t.r.hook("check", s.op.dest)
		}
		if err != nil {
			return []Failure{{sites[0].op.path, "nginx -t (with /etc/nginx/nginx.conf)", out + nginxHint(out) + "(" + err.Error() + ")"}}
		}
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
	main = injectTempDirs(main, dir, nginxModules(ctx, nginx))
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
		case "pid":
			return indent + "pid " + quote(filepath.Join(dir, "nginx.pid")) + ";"
		case "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path":
			return indent + name + " " + quote(filepath.Join(dir, "tmp-"+name)) + ";"
		}
		if name == "include" && strings.HasPrefix(p, dir+"/") {
			return line // an expanded include (nginxCheckMain)
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

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// nginxIncludeGlob matches include lines whose argument has a wildcard.
var nginxIncludeGlob = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?m)^([ \t]*)include[ \t]+("[^"\n]*"|'[^'\n]*'|[^\s;]+)[ \t]*;`)
})

// nginxCheckMain checks every site at once in the host's main config: the
// sites-enabled and conf.d includes are expanded to copies of the desired
// managed files and of the host's other files there.
func (t *txn) nginxCheckMain(ctx context.Context, nginx, mainPath string) (string, error) {
	dir, err := os.MkdirTemp("", "jitsi-agent-nginx-check-*")
	if err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(mainPath)
	if err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	labels := map[string]string{}
	n := 0
	var perr error
	text := nginxIncludeGlob().ReplaceAllStringFunc(string(data), func(line string) string {
		m := nginxIncludeGlob().FindStringSubmatch(line)
		p := strings.Trim(m[2], `"'`)
		if !filepath.IsAbs(p) {
			p = filepath.Join("/etc/nginx", p)
		}
		if !isNginxSite(p) || !strings.ContainsAny(p, "*?[") {
			return line
		}
		paths, err := t.nginxGlob(p)
		if err != nil && perr == nil {
			perr = err
		}
		var incs []string
		for _, src := range paths {
			content, label, err := t.nginxSource(src)
			if err != nil {
				if perr == nil {
					perr = err
				}
				continue
			}
			rw, err := t.nginxRewrite(string(content), dir)
			if err != nil && perr == nil {
				perr = err
			}
			n++
			cp := filepath.Join(dir, fmt.Sprintf("site-%d.conf", n))
			if err := os.WriteFile(cp, []byte(rw), 0o600); err != nil && perr == nil {
				perr = err
			}
			labels[cp] = label
			incs = append(incs, "include "+quote(cp)+";")
		}
		if len(incs) == 0 {
			return m[1] + "# " + strings.TrimSpace(line) + " (nothing there)"
		}
		return m[1] + strings.Join(incs, " ") // one line: line numbers stay
	})
	if perr != nil {
		return "", fmt.Errorf("nginx check: %w", perr)
	}
	text, err = t.nginxRewrite(text, dir)
	if err != nil {
		return "", err
	}
	if !regexp.MustCompile(`(?m)^[ \t]*pid[ \t]`).MatchString(text) {
		text = "pid " + quote(filepath.Join(dir, "nginx.pid")) + "; " + text
	}
	build := nginxModules(ctx, nginx)
	text = injectTempDirs(text, dir, build)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("nginx check: %w", err)
	}
	// nginx's own prefix: relative paths in the host's config (load_module
	// modules/...) resolve as they will for the running nginx.
	prefix := dir + "/"
	if m := regexp.MustCompile(`--prefix=(\S+)`).FindStringSubmatch(build); m != nil {
		prefix = strings.TrimSuffix(m[1], "/") + "/"
	}
	out, err := t.exec(ctx, "", nginx, "-t", "-q", "-p", prefix, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	msg := string(out)
	for cp, label := range labels {
		msg = strings.ReplaceAll(msg, cp, label)
	}
	msg = strings.ReplaceAll(msg, conf, "/etc/nginx/nginx.conf")
	msg = strings.ReplaceAll(msg, dir, "<check dir>")
	if msg != "" && !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	return msg, err
}

// nginxGlob lists what an include glob in a site directory matches: the
// host's entries plus the managed ones, in nginx's (sorted) order.
func (t *txn) nginxGlob(pattern string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	real, err := filepath.Glob(t.r.host.Real(pattern))
	if err != nil {
		return nil, err
	}
	for _, r := range real {
		if strings.HasPrefix(filepath.Base(r), ".") {
			continue // glob(3) skips dot files (and staged temporaries are dot files)
		}
		p := filepath.Join(filepath.Dir(pattern), filepath.Base(r))
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if t.set != nil {
		for _, f := range t.set.Files {
			if ok, _ := filepath.Match(pattern, f.Path); ok && !seen[f.Path] {
				seen[f.Path] = true
				out = append(out, f.Path)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// nginxSource is what nginx will read at p: the desired content of a
// managed file (following a managed or real link to a managed file), else
// the host's file. label names it in messages.
func (t *txn) nginxSource(p string) ([]byte, string, error) {
	for range 8 {
		if t.set != nil {
			if f, ok := t.set.Lookup(p); ok {
				if f.Kind != render.KindSymlink {
					return f.Content, p + " (staged)", nil
				}
				p = linkTarget(p, f.Target)
				continue
			}
		}
		real := t.r.host.Real(p)
		fi, err := os.Lstat(real)
		if err != nil {
			return nil, "", err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(real)
			if err != nil {
				return nil, "", err
			}
			p = linkTarget(p, target)
			continue
		}
		b, err := os.ReadFile(real)
		return b, p, err
	}
	return nil, "", fmt.Errorf("%s: too many levels of links", p)
}

func linkTarget(link, target string) string {
	if filepath.IsAbs(target) {
		return filepath.Clean(target)
	}
	return filepath.Join(filepath.Dir(link), target)
}

// nginxModules is nginx -V's configure line (which modules are built in).
func nginxModules(ctx context.Context, nginx string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, nginx, "-V").CombinedOutput()
	return string(out)
}

// injectTempDirs puts the temp directories nginx would create (and chown)
// under /var/lib/nginx into dir, on the http line (line numbers stay),
// except those the config already sets (rewritten into dir already).
func injectTempDirs(text, dir, modules string) string {
	var add []string
	for _, td := range nginxTempDirs {
		if td.module != "" && strings.Contains(modules, "--without-"+td.module) {
			continue
		}
		if regexp.MustCompile(`(?m)^[ \t]*` + td.directive + `[ \t]`).MatchString(text) {
			continue
		}
		add = append(add, td.directive+" "+quote(filepath.Join(dir, "tmp-"+td.directive))+";")
	}
	if len(add) == 0 {
		return text
	}
	done := false
	return nginxHTTPBlock().ReplaceAllStringFunc(text, func(m string) string {
		if done {
			return m
		}
		done = true
		return m + " " + strings.Join(add, " ")
	})
}

// nginxHint explains the failures a site cannot fix by itself.
func nginxHint(out string) string {
	if strings.Contains(out, `"server_names_hash_bucket_size" directive is duplicate`) {
		return "hint: /etc/nginx/nginx.conf sets server_names_hash_bucket_size and the site needs its own (a long domain): remove the directive from nginx.conf\n"
	}
	return ""
}
