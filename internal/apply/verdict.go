package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"syscall"
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
