package secrets

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

// HistoryFile is the name, in the secrets directory, of the record of
// every secret value this host has had.
const HistoryFile = "history.json"

// MinHistoryLength: shorter values are not recorded (too short to be a
// valid secret, and masking them would garble ordinary words).
const MinHistoryLength = 8

// maxHistory bounds the record (oldest entries are dropped first).
const maxHistory = 4096

// History is every secret value this host has ever had — the spec's app
// secret, TURN secret and API keys, the generated passwords — each as an
// HMAC-SHA256 under a random key kept next to it (never the value), plus
// its length. Masking by value history hides an old secret that a file no
// longer carries (a plan after an auth switch shows the removed line) while
// ordinary lines stay readable, which masking by shape cannot do.
type History struct {
	key     []byte
	entries []historyRecord // oldest first
	macs    map[[sha256.Size]byte]bool
	lengths map[int]*fpSet // length -> fingerprints of that length
	base    uint64         // rolling-hash base, derived from the key
	dirty   bool
}

// fpSet is a bitset of 16-bit fingerprints.
type fpSet [1024]uint64

type historyFile struct {
	Version int             `json:"version"`
	Key     string          `json:"key"`
	Entries []historyRecord `json:"entries"`
}

type historyRecord struct {
	Len int    `json:"len"`
	MAC string `json:"mac"`
	// FP is 16 bits of a keyed rolling hash: Mask slides it over the text
	// and computes an HMAC only where it matches (1 in 65536 windows).
	FP uint16 `json:"fp"`
}

// LoadHistory reads the history in dir. A missing file is an empty history
// with a fresh key (written by Save).
func LoadHistory(dir string) (*History, error) {
	h := &History{macs: map[[sha256.Size]byte]bool{}, lengths: map[int]*fpSet{}}
	b, err := os.ReadFile(filepath.Join(dir, HistoryFile))
	if errors.Is(err, fs.ErrNotExist) {
		h.key = make([]byte, 32)
		if _, err := rand.Read(h.key); err != nil {
			return nil, fmt.Errorf("secret history: %w", err)
		}
		h.setBase()
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret history: %w", err)
	}
	var f historyFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return nil, fmt.Errorf("secret history %s is unreadable (%v); move it away to start a new one", filepath.Join(dir, HistoryFile), err)
	}
	if h.key, err = hex.DecodeString(f.Key); err != nil || len(h.key) != 32 {
		return nil, fmt.Errorf("secret history %s has an invalid key; move it away to start a new one", filepath.Join(dir, HistoryFile))
	}
	h.setBase()
	for _, e := range f.Entries {
		var m [sha256.Size]byte
		if b, err := hex.DecodeString(e.MAC); err == nil && len(b) == sha256.Size {
			copy(m[:], b)
			h.record(e.Len, m, e.FP)
		}
	}
	return h, nil
}

// setBase derives the rolling hash's (odd) base from the key.
func (h *History) setBase() {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte("rolling-hash-base"))
	h.base = binary.LittleEndian.Uint64(m.Sum(nil)) | 1
}

// fingerprint is the top 16 bits of the polynomial hash of s.
func (h *History) fingerprint(s string) uint16 {
	var x uint64
	for i := 0; i < len(s); i++ {
		x = x*h.base + uint64(s[i])
	}
	return uint16(x >> 48)
}

// macer computes HMACs under the history's key, reusing one state.
type macer struct {
	h   hash.Hash
	buf []byte
}

func (h *History) macer() *macer { return &macer{h: hmac.New(sha256.New, h.key)} }

func (m *macer) sum(s string) (out [sha256.Size]byte) {
	m.h.Reset()
	io.WriteString(m.h, s)
	m.buf = m.h.Sum(m.buf[:0])
	copy(out[:], m.buf)
	return out
}

func (h *History) record(n int, mac [sha256.Size]byte, fp uint16) {
	if h.macs[mac] {
		return
	}
	h.macs[mac] = true
	if h.lengths[n] == nil {
		h.lengths[n] = new(fpSet)
	}
	h.lengths[n][fp>>6] |= 1 << (fp & 63)
	h.entries = append(h.entries, historyRecord{Len: n, MAC: hex.EncodeToString(mac[:]), FP: fp})
}

// Add records values (callers pass every form a file may quote them in).
func (h *History) Add(values ...string) {
	m := h.macer()
	for _, v := range values {
		if len(v) < MinHistoryLength {
			continue
		}
		if mac := m.sum(v); !h.macs[mac] {
			h.record(len(v), mac, h.fingerprint(v))
			h.dirty = true
		}
	}
}

// Contains reports whether v was recorded.
func (h *History) Contains(v string) bool { return h.macs[h.macer().sum(v)] }

// Save writes the history to dir (0600) if it changed.
func (h *History) Save(dir string) error {
	if !h.dirty {
		return nil
	}
	entries := h.entries
	if len(entries) > maxHistory {
		entries = entries[len(entries)-maxHistory:]
	}
	f := historyFile{Version: 1, Key: hex.EncodeToString(h.key), Entries: entries}
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return fmt.Errorf("secret history: %w", err)
	}
	if err := fsys.MkdirPrivate(dir); err != nil {
		return fmt.Errorf("secret history: %w", err)
	}
	if err := fsys.WriteAtomic(filepath.Join(dir, HistoryFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("secret history: %w", err)
	}
	h.dirty = false
	return nil
}

// Mask replaces every substring of s that is a recorded secret value by
// replacement. For each recorded length it rolls a keyed hash over s and
// computes an HMAC only where the 16-bit fingerprint matches, longest
// lengths first: linear in len(s) times the number of distinct lengths.
func (h *History) Mask(s, replacement string) string {
	if h == nil || len(h.lengths) == 0 {
		return s
	}
	lengths := make([]int, 0, len(h.lengths))
	for n := range h.lengths {
		lengths = append(lengths, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(lengths)))
	m := h.macer()
	for _, n := range lengths {
		if n > len(s) {
			continue
		}
		fps := h.lengths[n]
		// pow = base^(n-1), to drop the leading byte of the window.
		pow := uint64(1)
		for i := 1; i < n; i++ {
			pow *= h.base
		}
		var x uint64
		for i := 0; i < n; i++ {
			x = x*h.base + uint64(s[i])
		}
		var b strings.Builder
		last := 0
		for i := 0; ; {
			if fp := uint16(x >> 48); i >= last && fps[fp>>6]&(1<<(fp&63)) != 0 && h.macs[m.sum(s[i:i+n])] {
				b.WriteString(s[last:i])
				b.WriteString(replacement)
				last = i + n
			}
			if i+n >= len(s) {
				break
			}
			x = (x-uint64(s[i])*pow)*h.base + uint64(s[i+n])
			i++
		}
		if last > 0 {
			b.WriteString(s[last:])
			s = b.String()
		}
	}
	return s
}

// Record adds values to the history in dir and saves it: every secret a
// render is about to write goes through here first.
func Record(dir string, values ...string) error {
	h, err := LoadHistory(dir)
	if err != nil {
		return err
	}
	h.Add(values...)
	return h.Save(dir)
}
