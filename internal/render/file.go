package render

import (
	"io/fs"
	"sort"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
)

// Kind says what a desired entry is.
type Kind string

const (
	// KindFile is a regular file with Content.
	KindFile Kind = "file"
	// KindSymlink is a symbolic link pointing at Target (Debian's
	// conf.d -> conf.avail and sites-enabled -> sites-available links).
	KindSymlink Kind = "symlink"
)

// File is one desired entry on the host. Paths are absolute as they sit under
// "/"; plan/apply prefix them with --root.
type File struct {
	Path    string
	Kind    Kind
	Content []byte      // KindFile
	Target  string      // KindSymlink: the link text (relative or absolute)
	Mode    fs.FileMode // permission bits, e.g. 0640
	Owner   string      // user name ("" = leave as is / root on create)
	Group   string      // group name
	// Component is the built-in component owning the file (prosody, jicofo,
	// jvb, nginx, coturn), or "template:<name>" for user templates.
	Component string
	// Units are the systemd units to reload/restart when the file changes.
	Units []string
	// Sensitive files hold secrets; their diffs are redacted.
	Sensitive bool
	// Check is an optional command (confd-style) run against the staged
	// file; "{{.Path}}" is replaced by the staged path.
	Check string
	// Drift is the per-file drift policy ("" = the deployment default).
	Drift string
	// Validators are a built-in file's validators, its files-table row's:
	// apply runs exactly those on the staged file. Nil for user templates
	// and certificates: apply then chooses by destination (luac for .lua,
	// prosodyctl for Prosody vhosts, nginx -t for nginx sites).
	Validators []files.Validator
}

// Set is the complete desired state of one host, sorted by path.
type Set struct {
	Files []File
	// Redact lists secret values that must never appear in diffs or logs.
	Redact []string
}

// Sort orders files by path.
func (s *Set) Sort() {
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Path < s.Files[j].Path })
}

// Lookup returns the file at path.
func (s *Set) Lookup(path string) (File, bool) {
	for _, f := range s.Files {
		if f.Path == path {
			return f, true
		}
	}
	return File{}, false
}
