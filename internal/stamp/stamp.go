// Package stamp recognises a file-only apply that would change nothing
// without loading the spec, rendering or planning, the way make or ninja
// decide that a target is up to date: by fingerprinting everything the
// result depends on.
//
// After a file-only apply (no unit, account, firewall or ACME step: --root
// DIR, or --no-reload --no-acme) that changed nothing and succeeded, the
// CLI records a stamp in the state directory: the command line, the
// program, the fingerprints of every spec input and looked-up environment
// variable (internal/planfile), of every managed file and of the state
// directory, of the managed files' parent directories, of the user and
// group databases the owners are resolved with, of dpkg's status file and
// of the host name, and what the apply printed. The next such apply
// recomputes those fingerprints from the stamp's lists and, when all match
// and the stamp is less than MaxAge old, prints the same output and exits
// 0; anything else (a changed byte, a new state file, a journal left by a
// crash, a newer binary, an expired stamp) takes the full path, which
// writes a new stamp when it again changes nothing.
//
// Time is the one input that is not fingerprinted: certificate renewals are
// decided by it (the internal CA renews 30 days before expiry). MaxAge
// bounds how late a stamp can make such a decision.
package stamp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
)

// Name is the stamp's file name in the state directory.
const Name = planfile.NoopStamp

// MaxAge is how long a stamp is trusted.
const MaxAge = time.Hour

// maxSize bounds the stamp file.
const maxSize = 4 << 20

// FormatVersion is the stamp format.
const FormatVersion = 1

// Key is what must be identical between the two runs besides the host:
// the program and the command line.
type Key struct {
	// Program identifies the executable: version, commit and the file's
	// device, inode, size and modification time (a rebuilt binary, with
	// other built-in templates, is another program).
	Program string
	// Args are the command line, normalised (absolute paths).
	Args []string
	// Dir is the working directory.
	Dir string
}

// ProgramID identifies the program at path exe (absolute, symlinks
// resolved, as os.Executable reports it) for Key.Program: version names
// the build, the file's identity the very binary.
func ProgramID(version, exe string) (string, error) {
	fi, err := os.Stat(exe)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", errors.New("no stat of the executable")
	}
	return fmt.Sprintf("%s %s dev=%d ino=%d size=%d mtime=%d", version, exe, st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano()), nil
}

// Stamp is the record of one no-op apply.
type Stamp struct {
	Format  int
	Created time.Time
	// Verified is when the files' contents were last read and found as
	// recorded (the racy rule's reference; Created at first).
	Verified time.Time
	Key      Key
	// Inputs are the spec's input files (planfile.Inputs).
	Inputs map[string]string
	// Env are the looked-up environment variables (planfile.EnvRecorder).
	Env map[string]string
	// Managed are the managed paths (as under /); Files their states and
	// the state directory's files' (the set planfile.HostFiles covers).
	Managed []string
	Files   map[string]FileState
	// Dirs are the states of the managed paths' parent directories.
	Dirs map[string]string
	// System are the user and group databases, dpkg's status file and the
	// host name.
	System map[string]string
	// Stdout and Stderr are what the apply printed.
	Stdout string
	Stderr string
}

// Facts are what one run depended on, gathered by the full path.
type Facts struct {
	Key      Key
	Root     string
	StateDir string            // as under /
	Inputs   []string          // spec input paths
	Env      map[string]string // name -> digest (planfile.EnvRecorder.Digests)
	Managed  []string          // as under /
}

// Collect fingerprints the facts now.
func Collect(f Facts, now time.Time) (*Stamp, error) {
	s := &Stamp{Format: FormatVersion, Created: now.UTC(), Verified: now.UTC(), Key: f.Key, Env: maps.Clone(f.Env), Managed: slices.Clone(f.Managed)}
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	var err error
	if s.Inputs, err = planfile.Inputs(f.Inputs); err != nil {
		return nil, err
	}
	if s.Files, err = fileStates(f.Root, f.Managed, f.StateDir); err != nil {
		return nil, err
	}
	if s.Dirs, err = dirStates(f.Root, f.Managed); err != nil {
		return nil, err
	}
	s.System = system(f.Root)
	return s, nil
}

// SameHost reports whether s and o saw the same inputs, environment,
// files, directories and system (their times and output aside): an apply
// between the two changed nothing.
func (s *Stamp) SameHost(o *Stamp) bool {
	return slices.Equal(s.Key.Args, o.Key.Args) && s.Key.Program == o.Key.Program && s.Key.Dir == o.Key.Dir &&
		maps.Equal(s.Inputs, o.Inputs) && maps.Equal(s.Env, o.Env) && slices.Equal(s.Managed, o.Managed) &&
		maps.Equal(s.Files, o.Files) && maps.Equal(s.Dirs, o.Dirs) && maps.Equal(s.System, o.System)
}

// Write stores the stamp with what the run printed, 0600, atomically, in
// the state directory (which must exist).
func Write(root, stateDir string, s *Stamp, stdout, stderr string) error {
	s.Stdout, s.Stderr = stdout, stderr
	return s.write(root, stateDir)
}

func (s *Stamp) write(root, stateDir string) error {
	return fsys.WriteAtomic(filepath.Join(root, stateDir, Name), s.encode(), 0o600)
}

// Check reads the stamp in stateDir under root and returns it when it is
// for key, at most MaxAge old, and every fingerprint it lists is still
// the same; otherwise nil. Any error is a mismatch (the full path runs).
func Check(root, stateDir string, key Key, env func(string) (string, bool), now time.Time) *Stamp {
	s, err := Load(root, stateDir)
	if err != nil {
		return nil
	}
	if age := now.Sub(s.Created); age < 0 || age > MaxAge {
		return nil
	}
	if !slices.Equal(s.Key.Args, key.Args) || s.Key.Program != key.Program || s.Key.Dir != key.Dir {
		return nil
	}
	rec := &planfile.EnvRecorder{Env: env}
	for name := range s.Env {
		rec.Lookup(name)
	}
	if !maps.Equal(rec.Digests(), s.Env) {
		return nil
	}
	if !maps.Equal(system(root), s.System) {
		return nil
	}
	in, err := planfile.Inputs(slices.Sorted(maps.Keys(s.Inputs)))
	if err != nil || !maps.Equal(in, s.Inputs) {
		return nil
	}
	dirs, err := dirStates(root, s.Managed)
	if err != nil || !maps.Equal(dirs, s.Dirs) {
		return nil
	}
	ok, refresh := s.filesMatch(root, stateDir, now)
	if !ok {
		return nil
	}
	if refresh {
		// Files read because they were too recent are now settled: from
		// the next run on their Lstat suffices (one rewrite of the stamp).
		s.Verified = now.UTC()
		_ = s.write(root, stateDir)
	}
	return s
}

// FileState is one path's identity and content. Stat is what Lstat says
// (for a regular file: device, inode, size, modification and change times,
// mode, owner); Content its fingerprint ("absent", "link:TARGET", "dir",
// or mode, owner and SHA-256 of a regular file).
type FileState struct {
	Stat    string
	Content string
}

// racyWindow: a regular file whose change time is this close to (or after)
// the stamp's creation is compared by content even when its Lstat is
// unchanged. File times come from the kernel's coarse clock, so a second
// write within the same tick as the recorded one could keep every Lstat
// field; after the window, any write or chmod/chown moves the change time,
// which no one can set back (git's "racy clean" rule).
const racyWindow = time.Second

// filesMatch compares the managed paths and the state directory with the
// stamp: by Lstat where it is unchanged and was already settled when the
// contents were last verified, by content otherwise. refresh says that
// files were read for being too recent and are settled now.
func (s *Stamp) filesMatch(root, stateDir string, now time.Time) (ok, refresh bool) {
	cur, err := walk(root, s.Managed, stateDir)
	if err != nil || len(cur) != len(s.Files) {
		return false, false
	}
	racy, settled := false, true
	for p, e := range cur {
		rec, ok := s.Files[p]
		if !ok {
			return false, false
		}
		if e.stat == rec.Stat {
			if !e.regular || e.ctime.Before(s.Verified.Add(-racyWindow)) {
				continue
			}
			racy = true
			settled = settled && e.ctime.Before(now.Add(-racyWindow))
		}
		c, err := content(e)
		if err != nil || c != rec.Content {
			return false, false
		}
	}
	return true, racy && settled
}

// entry is one path found by walk.
type entry struct {
	real    string // the path under root
	stat    string
	regular bool
	ctime   time.Time
	fi      fs.FileInfo
}

// walk lists planfile.HostPaths with their Lstat.
func walk(root string, managed []string, stateDir string) (map[string]entry, error) {
	paths, err := planfile.HostPaths(root, managed, stateDir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]entry, len(paths))
	for _, p := range paths {
		e, err := lstat(p.Abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Key, err)
		}
		out[p.Key] = e
	}
	return out, nil
}

func lstat(p string) (entry, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return entry{real: p, stat: "absent"}, nil
	}
	if err != nil {
		return entry{}, err
	}
	e := entry{real: p, fi: fi}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return entry{}, err
		}
		e.stat = "link:" + t
	case fi.IsDir():
		e.stat = "dir"
	case !fi.Mode().IsRegular():
		e.stat = "special:" + fi.Mode().Type().String()
	default:
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return entry{}, errors.New("no stat")
		}
		e.regular = true
		e.ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		e.stat = fmt.Sprintf("file:%d:%d:%d:%d:%d:%o:%d:%d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano(), e.ctime.UnixNano(), fi.Mode(), st.Uid, st.Gid)
	}
	return e, nil
}

// maxContent bounds what is read to fingerprint one file.
const maxContent = 64 << 20

// content fingerprints an entry: its stat for anything but a regular
// file, else mode, owner and the SHA-256 of what it holds now.
func content(e entry) (string, error) {
	if !e.regular {
		return e.stat, nil
	}
	if e.fi.Size() > maxContent {
		return "", fmt.Errorf("%s is larger than %d MiB", e.real, maxContent>>20)
	}
	b, err := os.ReadFile(e.real)
	if err != nil {
		return "", err
	}
	st := e.fi.Sys().(*syscall.Stat_t)
	sum := sha256.Sum256(b)
	return fmt.Sprintf("file:%o:%d:%d:%s", e.fi.Mode().Perm(), st.Uid, st.Gid, hex.EncodeToString(sum[:])), nil
}

// fileStates records walk's paths with both their Lstat and content.
func fileStates(root string, managed []string, stateDir string) (map[string]FileState, error) {
	cur, err := walk(root, managed, stateDir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]FileState, len(cur))
	for p, e := range cur {
		c, err := content(e)
		if err != nil {
			return nil, err
		}
		out[p] = FileState{Stat: e.stat, Content: c}
	}
	return out, nil
}

// dirStates fingerprints every parent directory of the managed paths
// (mode, owner; a symlink's target; absence), root itself excluded.
func dirStates(root string, managed []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range managed {
		for d := filepath.Dir(p); d != "/" && d != "." && out[d] == ""; d = filepath.Dir(d) {
			fi, err := os.Lstat(filepath.Join(root, d))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				out[d] = "absent"
			case err != nil:
				return nil, err
			case fi.Mode()&fs.ModeSymlink != 0:
				t, err := os.Readlink(filepath.Join(root, d))
				if err != nil {
					return nil, err
				}
				out[d] = "link:" + t
			default:
				uid, gid := -1, -1
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					uid, gid = int(st.Uid), int(st.Gid)
				}
				out[d] = fmt.Sprintf("%s:%d:%d", fi.Mode(), uid, gid)
			}
		}
	}
	return out, nil
}

// system fingerprints what owners and the takeover of packaged files are
// resolved with: the host's user and group databases (os/user reads them
// directly), dpkg's status file under root (by identity and size: dpkg
// replaces it whole), the host name (a spec's host block may be chosen by
// it) and the Lua module links render would declare. Unreadable items get a marker that never matches a good run's.
func system(root string) map[string]string {
	out := map[string]string{}
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		b, err := os.ReadFile(p)
		if err != nil {
			out[p] = "error:" + errorKind(err)
			continue
		}
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
	}
	status := "/var/lib/dpkg/status"
	if fi, err := os.Stat(filepath.Join(root, status)); err != nil {
		out[status] = "error:" + errorKind(err)
	} else if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		out[status] = fmt.Sprintf("dev=%d ino=%d size=%d mtime=%d", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano())
	}
	h, err := os.Hostname()
	if err != nil {
		h = "error:" + errorKind(err)
	}
	out["hostname"] = h
	// The pure-Lua modules render links for Prosody's token plugin follow
	// Prosody's interpreter and the Lua modules installed under root, by a
	// package or by hand (luarocks): the links it would declare now.
	var links strings.Builder
	for _, f := range luamod.Links(root) {
		fmt.Fprintf(&links, "%s -> %s\n", f.Path, f.Target)
	}
	out["prosody-lua-links"] = links.String()
	return out
}

func errorKind(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// Tee copies what a command prints, for Write.
type Tee struct {
	W   io.Writer
	Buf bytes.Buffer
}

func (t *Tee) Write(p []byte) (int, error) {
	t.Buf.Write(p)
	return t.W.Write(p)
}
