// Package support builds the support bundle the app team hands to whoever
// helps them (the guide's §12 "server logs and debugging" and §14 "config
// content, sanitized"): one .tar.gz with the spec and every rendered file,
// package versions, doctor's and plan's reports and the last journal lines
// of each unit, with every secret masked by value (in each form a file or
// log may hold it: raw, quoted, base64, hex, URL-escaped) and every token,
// bearer credential and password a log line carries masked by shape.
package support

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// Masked replaces a secret.
const Masked = "(masked)"

// Masker hides secrets by value and credentials by shape.
type Masker struct {
	r *strings.Replacer
	// history masks values this host had before (nil: none).
	history func(string) string
}

// NewMasker masks every value in secrets (values shorter than 6 bytes are
// ignored: they would mask ordinary text) in all its forms; history, when
// set, masks earlier values too.
func NewMasker(secrets []string, history func(string) string) *Masker {
	seen := map[string]bool{}
	var forms []string
	add := func(f string) {
		if len(f) >= 6 && !seen[f] {
			seen[f] = true
			forms = append(forms, f)
		}
	}
	for _, s := range secrets {
		if len(s) < 6 {
			continue
		}
		for _, f := range render.RedactionForms(s) {
			add(f)
		}
		b := []byte(s)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			add(enc.EncodeToString(b))
		}
		add(hex.EncodeToString(b))
		add(strings.ToUpper(hex.EncodeToString(b)))
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
	}
	sort.Slice(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Masked)
	}
	return &Masker{r: strings.NewReplacer(pairs...), history: history}
}

// Mask returns s with every known secret and every credential-shaped
// value masked.
func (m *Masker) Mask(s string) string {
	s = m.r.Replace(s)
	if m.history != nil {
		s = m.history(s)
	}
	return journal.MaskTokens(s)
}

// File is one rendered file.
type File struct {
	Path    string
	Content []byte
}

// Input is what goes into the bundle. Everything is masked on the way in.
type Input struct {
	Domain   string
	SpecPath string
	Spec     []byte
	Files    []File
	// Versions: package (or "jitsi-agent") -> version, "" when absent.
	Versions map[string]string
	Doctor   []byte // doctor --json
	Plan     []byte // plan
	// Journals: unit -> last lines; JournalErrors: unit -> why not read.
	Journals      map[string][]string
	JournalErrors map[string]string
	Now           time.Time
}

// Write writes the bundle as a gzipped tar to w.
func Write(w io.Writer, in Input, m *Masker) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	base := "jitsi-agent-support-" + in.Domain + "-" + in.Now.UTC().Format("20060102T150405Z")
	put := func(name string, content []byte) error {
		masked := []byte(m.Mask(string(content)))
		h := &tar.Header{Name: path.Join(base, name), Mode: 0o600, Size: int64(len(masked)), ModTime: in.Now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("support bundle: %s: %w", name, err)
		}
		_, err := tw.Write(masked)
		return err
	}
	var readme bytes.Buffer
	fmt.Fprintf(&readme, "jitsi-agent support bundle for %s, made %s.\n\n", in.Domain, in.Now.UTC().Format(time.RFC3339))
	readme.WriteString(`Contents:
  spec/            the spec, as written
  rendered/        every file jitsi-agent renders from it, laid out as under /
  versions.txt     versions of prosody, jicofo, the videobridge, nginx, coturn, jitsi-meet and jitsi-agent
  doctor.json      jitsi-agent doctor --json
  plan.txt         jitsi-agent plan (what apply would change on this host)
  journal/UNIT.log the last lines each unit logged (journalctl)

Every secret of the deployment (JWT app_secret, API keys, TURN secret, internal passwords) is replaced by
"(masked)" wherever it appears, in every form (quoted, base64, hex, URL-escaped); tokens (JWTs), token= and
jwt= URL parameters, bearer credentials and password/secret values in logs are masked too.
`)
	if err := put("README.txt", readme.Bytes()); err != nil {
		return err
	}
	if len(in.Spec) > 0 {
		if err := put("spec/"+path.Base(in.SpecPath), in.Spec); err != nil {
			return err
		}
	}
	for _, f := range in.Files {
		if err := put("rendered/"+strings.TrimPrefix(path.Clean(f.Path), "/"), f.Content); err != nil {
			return err
		}
	}
	var v bytes.Buffer
	names := make([]string, 0, len(in.Versions))
	for n := range in.Versions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ver := in.Versions[n]
		if ver == "" {
			ver = "not installed"
		}
		fmt.Fprintf(&v, "%-22s %s\n", n, ver)
	}
	for name, content := range map[string][]byte{"versions.txt": v.Bytes(), "doctor.json": in.Doctor, "plan.txt": in.Plan} {
		if err := put(name, content); err != nil {
			return err
		}
	}
	units := make([]string, 0, len(in.Journals)+len(in.JournalErrors))
	for u := range in.Journals {
		units = append(units, u)
	}
	for u := range in.JournalErrors {
		if _, ok := in.Journals[u]; !ok {
			units = append(units, u)
		}
	}
	sort.Strings(units)
	for _, u := range units {
		var b bytes.Buffer
		if e, ok := in.JournalErrors[u]; ok {
			fmt.Fprintf(&b, "(journal not available: %s)\n", e)
		}
		for _, l := range in.Journals[u] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		if err := put("journal/"+u+".log", b.Bytes()); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("support bundle: %w", err)
	}
	return gz.Close()
}

// Packages whose versions the bundle lists (Debian package names).
var Packages = []string{"prosody", "jicofo", "jitsi-videobridge2", "jitsi-meet-web", "jitsi-meet-prosody",
	"nginx", "nginx-core", "nginx-light", "nginx-full", "coturn", "lua5.4", "lua-cjson", "lua-basexx", "lua-luaossl"}

// Versioner reports installed package versions ("" when not installed).
type Versioner interface {
	Version(ctx context.Context, pkg string) string
}

// Dpkg is the real Versioner: dpkg-query.
type Dpkg struct{}

// Version implements Versioner.
func (Dpkg) Version(ctx context.Context, pkg string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	st, ver, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if st != "installed" {
		return ""
	}
	return ver
}

// Versions asks v for every package.
func Versions(ctx context.Context, v Versioner) map[string]string {
	out := map[string]string{}
	for _, p := range Packages {
		out[p] = v.Version(ctx, p)
	}
	return out
}

// Journals reads the last n lines of each unit.
func Journals(ctx context.Context, r journal.Reader, units []string, n int) (map[string][]string, map[string]string) {
	lines, errs := map[string][]string{}, map[string]string{}
	for _, u := range units {
		if r == nil {
			errs[u] = "journalctl is not installed"
			continue
		}
		l, err := r.Lines(ctx, u, n)
		if err != nil {
			errs[u] = err.Error()
			continue
		}
		lines[u] = l
	}
	return lines, errs
}
