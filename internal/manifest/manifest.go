// Package manifest records what jitsi-agent last applied to a host: per
// managed path the sha256, mode, owner, kind and link target, plus the apply
// serial and time. Plan compares it with the host and the desired set to
// tell a spec change from a hand edit (drift) or a package upgrade.
//
// The manifest lives at <root><state dir>/manifest.json (mode 0600) and is
// replaced atomically. It never holds file contents.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

// Version is the manifest format version.
const Version = 1

// FileName is the manifest's name inside the state directory.
const FileName = "manifest.json"

// Entry is what was last applied at one path.
type Entry struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "file" | "symlink"
	// WritePath is the file actually written when Path is a Debian link
	// (conf.d -> conf.avail, sites-enabled -> sites-available).
	WritePath string `json:"write_path,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Mode      string `json:"mode,omitempty"` // octal, "0640"
	Owner     string `json:"owner,omitempty"`
	Group     string `json:"group,omitempty"`
	Target    string `json:"target,omitempty"` // symlink text
	// Marker is true when the applied content carried the "jitsi-agent"
	// managed-by marker (used to recognise a package-replaced file).
	Marker    bool      `json:"marker,omitempty"`
	Component string    `json:"component,omitempty"`
	Units     []string  `json:"units,omitempty"`
	Serial    int       `json:"serial"`
	AppliedAt time.Time `json:"applied_at"`
}

// SameState reports whether two entries describe the same host state
// (ignoring when it was applied).
func (e Entry) SameState(o Entry) bool {
	if e.Path != o.Path || e.Kind != o.Kind || e.WritePath != o.WritePath || e.SHA256 != o.SHA256 ||
		e.Size != o.Size || e.Mode != o.Mode || e.Owner != o.Owner || e.Group != o.Group ||
		e.Target != o.Target || e.Marker != o.Marker || e.Component != o.Component || len(e.Units) != len(o.Units) {
		return false
	}
	for i := range e.Units {
		if e.Units[i] != o.Units[i] {
			return false
		}
	}
	return true
}

// FileMode parses Mode.
func (e Entry) FileMode() (fs.FileMode, error) {
	v, err := strconv.ParseUint(e.Mode, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("manifest entry %s: mode %q: %w", e.Path, e.Mode, err)
	}
	return FromUnixMode(uint32(v)), nil
}

// Manifest is the whole record.
type Manifest struct {
	Version int `json:"version"`
	// Serial counts applies and rollbacks; 0 = never applied.
	Serial    int       `json:"serial"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
	// Operation is "apply" or "rollback".
	Operation string `json:"operation,omitempty"`
	// RolledBackTo is the serial whose files a rollback restored.
	RolledBackTo int     `json:"rolled_back_to,omitempty"`
	Files        []Entry `json:"files"`

	index map[string]int
}

// New returns an empty manifest (never applied).
func New() *Manifest { return &Manifest{Version: Version, Files: []Entry{}} }

// Path returns the manifest path for a real state directory.
func Path(stateDir string) string { return filepath.Join(stateDir, FileName) }

// Load reads the manifest; a missing file gives an empty manifest.
func Load(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes a manifest (name is used in errors).
func Parse(b []byte, name string) (*Manifest, error) {
	m := New()
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("manifest %s: unsupported version %d (want %d)", name, m.Version, Version)
	}
	if m.Files == nil {
		m.Files = []Entry{}
	}
	m.reindex()
	return m, nil
}

func (m *Manifest) reindex() {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	m.index = make(map[string]int, len(m.Files))
	for i, e := range m.Files {
		m.index[e.Path] = i
	}
}

// Lookup returns the entry for path.
func (m *Manifest) Lookup(path string) (Entry, bool) {
	if m.index == nil {
		m.reindex()
	}
	i, ok := m.index[path]
	if !ok {
		return Entry{}, false
	}
	return m.Files[i], true
}

// SetFiles replaces the entries.
func (m *Manifest) SetFiles(files []Entry) {
	m.Files = append([]Entry(nil), files...)
	m.reindex()
}

// Clone returns a deep-enough copy (entries are values).
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Files = append([]Entry{}, m.Files...)
	c.reindex()
	return &c
}

// Marshal encodes the manifest (indented, sorted by path).
func (m *Manifest) Marshal() ([]byte, error) {
	m.Version = Version
	m.reindex()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Save writes the manifest atomically (temp file in the same directory,
// fsync, rename, fsync directory), mode 0600.
func (m *Manifest) Save(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := fsys.WriteAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	return nil
}

// ModeString formats permission bits as octal ("0640"), including
// setuid/setgid/sticky as the leading digit.
func ModeString(m fs.FileMode) string {
	return fmt.Sprintf("%04o", ToUnixMode(m))
}

// ToUnixMode converts Go mode bits to the numeric Unix form.
func ToUnixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// FromUnixMode converts numeric Unix permission bits to Go mode bits.
func FromUnixMode(v uint32) fs.FileMode {
	m := fs.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
