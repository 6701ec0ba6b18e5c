package apply

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Failure is one failed validation of a staged file.
type Failure struct {
	Path    string // managed path, as under /
	Checker string // "built-in", "luac -p", "nginx -t", "check command"
	Output  string // the checker's output (secrets redacted)
}

// CheckError is returned when any staged file fails validation. Nothing on
// the host was changed.
type CheckError struct {
	Failures []Failure
}

func (e *CheckError) Error() string {
	var sb strings.Builder
	sb.WriteString("apply: validation failed, nothing was changed:")
	for _, f := range e.Failures {
		fmt.Fprintf(&sb, "\n  %s: %s failed", f.Path, f.Checker)
		if out := strings.TrimSpace(f.Output); out != "" {
			for _, l := range strings.Split(out, "\n") {
				sb.WriteString("\n    " + l)
			}
		}
	}
	return sb.String()
}

// staged is a staged regular file as checkers see it.
type staged struct {
	op   *op
	file render.File
	real string // staged temp file
}

// check runs every validator: built-in checks always; with tools, each
// File.Check command and (unless Options.NoTools) luac, prosodyctl and nginx.
func (t *txn) check(ctx context.Context, tools bool) error {
	var files []staged
	for _, o := range t.ops {
		if o.write {
			files = append(files, staged{op: o, file: o.change.File, real: o.tmp})
		}
	}
	var fails []Failure
	for _, s := range files {
		if f := builtinCheck(s); f != nil {
			fails = append(fails, *f)
		}
		t.r.hook("check", s.op.dest)
	}
	if len(fails) == 0 && tools {
		fails = append(fails, t.toolChecks(ctx, files, !t.r.o.NoTools)...)
	}
	if len(fails) == 0 {
		return nil
	}
	content := map[string][]byte{}
	for _, s := range files {
		if s.file.Sensitive || containsAny(s.op.content, t.r.secrets) {
			content[s.op.path] = s.op.content
		}
	}
	for i := range fails {
		out := t.r.red.Replace(fails[i].Output)
		// A checker may print the file (or a secret) encoded: mask every
		// run of base64/hex that is part of an encoding of a secret or of
		// a secret-bearing file's content.
		var sources [][]byte
		if c, ok := content[fails[i].Path]; ok {
			sources = append(sources, c)
		}
		for _, v := range t.r.secrets {
			sources = append(sources, []byte(v))
		}
		fails[i].Output = maskEncoded(out, sources)
		fails[i].Checker = t.r.red.Replace(fails[i].Checker)
	}
	return &CheckError{Failures: fails}
}

func containsAny(b []byte, values []string) bool {
	for _, v := range values {
		if v != "" && bytes.Contains(b, []byte(v)) {
			return true
		}
	}
	return false
}

// encodedRun is a run of characters a base64 (standard or URL) or hex
// encoding is made of.
var encodedRun = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[A-Za-z0-9+/_=-]{12,}`) }) // compiled on first use, not at every start

// maskEncoded replaces every encoded run in out that occurs in the base64
// (any alignment, standard or URL alphabet, padded or not) or hex (either
// case) encoding of one of sources by plan.Redacted.
func maskEncoded(out string, sources [][]byte) string {
	if len(sources) == 0 {
		return out
	}
	var encs []string
	for _, src := range sources {
		if len(src) == 0 {
			continue
		}
		h := hex.EncodeToString(src)
		encs = append(encs, h, strings.ToUpper(h))
		for shift := 0; shift < 3; shift++ {
			// Prefixing 0-2 bytes shifts the alignment; the encoding of the
			// shifted part of src sits inside every such stream.
			b := append(make([]byte, shift), src...)
			encs = append(encs, base64.StdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b))
		}
	}
	return encodedRun().ReplaceAllStringFunc(out, func(run string) string {
		core := strings.TrimRight(run, "=")
		// The first and last characters of a run may straddle unrelated
		// bytes: compare its inside.
		if len(core) > 4 {
			core = core[1 : len(core)-1]
		}
		for _, e := range encs {
			if strings.Contains(e, core) {
				return plan.Redacted
			}
		}
		return run
	})
}

func builtinCheck(s staged) *Failure {
	o := s.op
	fail := func(format string, args ...any) *Failure {
		return &Failure{Path: o.path, Checker: "built-in", Output: fmt.Sprintf(format, args...)}
	}
	fi, err := os.Lstat(s.real)
	if err != nil {
		return fail("staged file: %v", err)
	}
	if o.kind == render.KindSymlink {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fail("staged entry is not a symlink")
		}
		if t, err := os.Readlink(s.real); err != nil || t != o.target {
			return fail("staged link points at %q, want %q", t, o.target)
		}
		return nil
	}
	if !fi.Mode().IsRegular() {
		return fail("staged entry is not a regular file")
	}
	if len(o.content) == 0 && o.change.Action != plan.ActionRestore && !strings.HasPrefix(o.change.Component, "template:") {
		return fail("rendered content is empty")
	}
	b, err := os.ReadFile(s.real)
	if err != nil {
		return fail("read back staged file: %v", err)
	}
	if !bytes.Equal(b, o.content) {
		return fail("staged file does not read back as written (%d of %d bytes)", len(b), len(o.content))
	}
	if fsys.Perm(fi) != o.mode {
		return fail("staged file has mode %v, want %v", fsys.Perm(fi), o.mode)
	}
	return nil
}

// toolChecks runs the validators that need tools, concurrently (they are
// independent processes on separate scratch copies): luac, prosodyctl and
// nginx -t and haproxy -c when external is set, and every File.Check
// command. Failures come back in a fixed order (Lua, Prosody, nginx,
// HAProxy, check commands).
func (t *txn) toolChecks(ctx context.Context, files []staged, external bool) []Failure {
	var lua, prosody, nginx, front, user []Failure
	var wg sync.WaitGroup
	spawn := func(dst *[]Failure, check func(context.Context, []staged) []Failure) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*dst = check(ctx, files)
		}()
	}
	if external {
		spawn(&lua, t.luaChecks)
		spawn(&prosody, t.prosodyChecks)
		spawn(&nginx, t.nginxChecks)
		spawn(&front, t.haproxyChecks)
	}
	spawn(&user, t.commandChecks)
	wg.Wait()
	if len(lua) > 0 {
		prosody = nil // prosodyctl's verdict only makes sense on Lua that parses
	}
	return slices.Concat(lua, prosody, nginx, front, user)
}

// commandChecks runs each File.Check command on its staged file.
func (t *txn) commandChecks(ctx context.Context, files []staged) []Failure {
	var fails []Failure
	for _, s := range files {
		if s.file.Check == "" || s.op.kind == render.KindSymlink {
			continue
		}
		cmdline := spec.CheckCommand(s.file.Check, shellQuote(s.real))
		out, err := t.exec(ctx, "", "/bin/sh", "-c", cmdline)
		if err != nil {
			fails = append(fails, Failure{s.op.path, "check command `" + s.file.Check + "`", t.mapPaths(out, err)})
		}
		t.r.hook("check", s.op.dest)
	}
	return fails
}

// luaChecks runs luac -p on every staged Lua file.
func (t *txn) luaChecks(ctx context.Context, all []staged) []Failure {
	var lua []staged
	for _, s := range all {
		if s.runs(files.Luac) {
			lua = append(lua, s)
		}
	}
	if len(lua) == 0 {
		return nil
	}
	luac := findTool("luac5.4", "luac")
	if luac == "" {
		t.r.notice("luac not installed: %d Lua file(s) not syntax-checked (apt-get install lua5.4)", len(lua))
		return nil
	}
	var fails []Failure
	for _, s := range lua {
		// Run in the file's directory: luac shortens long paths.
		out, err := t.exec(ctx, filepath.Dir(s.real), luac, "-p", "--", filepath.Base(s.real))
		if err != nil {
			fails = append(fails, Failure{s.op.path, "luac -p", t.mapPaths(out, err)})
		}
		t.r.hook("check", s.op.dest)
	}
	return fails
}

// Checkers lists the external validators apply runs on f, a staged
// regular file, written at p and, through a Debian link directory, at dest
// (both as under /). A built-in file's are the ones its files-table row
// lists (f.Validators: the table is the one source); for other files
// (user templates) they follow from where the file goes: "luac -p" for
// Lua, "prosodyctl check config" for Prosody virtual hosts, "nginx -t" for
// nginx sites, "haproxy -c" for the front's configuration.
func Checkers(f render.File, p, dest string) []files.Validator {
	var out []files.Validator
	for _, v := range []files.Validator{files.Luac, files.ProsodyCtl, files.NginxT, files.HAProxyC} {
		if runs(f, p, dest, v) {
			out = append(out, v)
		}
	}
	return out
}

// runs reports whether apply runs validator v on f (see Checkers).
func runs(f render.File, p, dest string, v files.Validator) bool {
	if f.Validators != nil {
		return slices.Contains(f.Validators, v)
	}
	switch v {
	case files.Luac:
		return isLua(p)
	case files.ProsodyCtl:
		return isProsodyVhost(dest)
	case files.NginxT:
		return isNginxSite(dest)
	case files.HAProxyC:
		return isHAProxyConfig(dest)
	}
	return false
}

// staged runs v.
func (s staged) runs(v files.Validator) bool {
	return s.op.kind != render.KindSymlink && runs(s.file, s.op.path, s.op.dest, v)
}

func isLua(p string) bool { return strings.HasSuffix(p, ".lua") }

// mapPaths replaces staged temp paths by the destination they stand for and
// appends the exit status.
func (t *txn) mapPaths(out []byte, err error) string {
	s := string(out)
	for _, o := range t.ops {
		if o.tmp != "" {
			s = strings.ReplaceAll(s, o.tmp, o.dest+" (staged)")
			s = strings.ReplaceAll(s, filepath.Base(o.tmp), o.dest+" (staged)")
		}
	}
	s = strings.TrimRight(s, "\n")
	if s != "" {
		s += "\n"
	}
	return s + "(" + err.Error() + ")"
}

// run executes a checker with the check timeout; the whole process group is
// killed when it expires.
func (t *txn) exec(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.r.o.CheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = nil
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", t.r.o.CheckTimeout)
	}
	return buf.Bytes(), err
}

func findTool(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
