package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/plan"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// Verdicts remembers which staged files an external validator accepted, so
// that a later apply of byte-identical content (a spec edit put back, a
// file restored after drift, a retry) does not run the validator again.
// The key is a SHA-256 digest of everything the validator's verdict
// depends on: the validator, the tool's identity (path, inode, size,
// mtime, ctime: a package upgrade replaces it), the effective uid, the
// path the file is checked as and its exact content. Only acceptances are
// kept: a refused file is checked again every time. A Verdicts is safe for
// concurrent use and bounded (maxVerdicts entries; it starts over when
// full). The zero value is not usable; nil (Options.Verdicts unset)
// disables the cache. The daemon keeps one in memory; nothing is stored on
// disk.
type Verdicts struct {
	mu sync.Mutex
	ok map[string]bool
	// Hits counts the validator runs the cache saved (tests, metrics).
	hits int
}

// maxVerdicts bounds a Verdicts: a daemon sees a handful of distinct
// validated files; more means content keeps changing, and starting over
// costs one validator run per file.
const maxVerdicts = 256

// NewVerdicts returns an empty cache.
func NewVerdicts() *Verdicts { return &Verdicts{ok: map[string]bool{}} }

// Hits is the number of validator runs answered from the cache.
func (v *Verdicts) Hits() int {
	if v == nil {
		return 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.hits
}

func (v *Verdicts) accepted(key string) bool {
	if v == nil || key == "" {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ok[key] {
		v.hits++
		return true
	}
	return false
}

// known reports whether key is accepted, without counting a hit.
func (v *Verdicts) known(key string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ok[key]
}

func (v *Verdicts) accept(key string) {
	if v == nil || key == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.ok) >= maxVerdicts {
		clear(v.ok)
	}
	v.ok[key] = true
}

// verdictKey is the cache key of validator running tool on content checked
// as dest; "" (never cached) when the tool cannot be identified.
func verdictKey(validator, tool, dest string, content []byte) string {
	fi, err := os.Stat(tool)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d:%d:%d:%d.%d:%d.%d\x00%d\x00%s\x00%d\x00", validator, tool,
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, os.Geteuid(), dest, len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// Precheck runs, ahead of an apply, the validators whose verdicts opts.Verdicts
// keeps (prosodyctl) on the files an Apply of set would write now, and
// records their acceptances. It changes nothing on the host: nothing is
// staged next to a destination, no backup, journal or manifest is written;
// the files are checked from scratch copies in directories of its own
// (PrecheckDir, and a "precheck" prefix in the temporary directory). It
// takes no lock, so a CLI apply never waits for it; callers run one
// pre-check at a time per state directory (the daemon does). The daemon calls it at the first event of a
// burst, so the apply at the end of the quiet period finds the verdicts
// ready; a file that changed again in between has another key and is
// checked by the apply itself. Errors and refusals are not reported here:
// the apply runs (and reports) every check it has no acceptance for.
func Precheck(ctx context.Context, set *render.Set, opts Options) error {
	if opts.Verdicts == nil || opts.NoTools {
		return nil
	}
	r, done, err := startRunner(opts, set.Redact, true)
	if err != nil {
		return err
	}
	defer done()
	m, err := manifest.Load(manifest.Path(r.state))
	if err != nil {
		return fmt.Errorf("apply: precheck: %w", err)
	}
	p, err := plan.Compute(set, plan.Options{Host: r.host, Manifest: m, Redact: set.Redact})
	if err != nil {
		return fmt.Errorf("apply: precheck: %w", err)
	}
	t := &txn{r: r, serial: m.Serial + 1, set: set, prev: m, op: "precheck"}
	var vhosts []staged
	for _, c := range p.Changes {
		o := opFromChange(c)
		s := staged{op: o, file: c.File}
		if o.write && s.runs(files.ProsodyCtl) && len(o.content) > 0 {
			vhosts = append(vhosts, s)
		}
	}
	if len(vhosts) == 0 {
		return nil
	}
	tool := findTool("prosodyctl")
	if tool == "" {
		return nil
	}
	for _, s := range vhosts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		key := verdictKey("prosodyctl check config", tool, s.op.dest, s.op.content)
		if key == "" || r.o.Verdicts.known(key) {
			continue
		}
		if _, err := t.prosodyCheck(ctx, tool, s, s.op.content); err == nil && ctx.Err() == nil {
			r.o.Verdicts.accept(key)
		}
	}
	return nil
}
