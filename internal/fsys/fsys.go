// Package fsys is jitsi-agent's access to the managed host's filesystem,
// rooted at --root. Paths given to it are absolute as they sit under "/"
// ("/etc/prosody/prosody.cfg.lua"); the implementation prefixes the root.
//
// Plan only reads through the Host interface (fake-able); apply also uses
// the write helpers of *OS, which are exercised against real temporary
// directories in tests.
package fsys

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// TempMarker is part of every temporary file jitsi-agent creates next to a
// destination: ".<base>.jitsi-agent-tmp-<random>". Leftovers from a crash
// are removed by the next apply.
const TempMarker = ".jitsi-agent-tmp-"

// Host is read access to the managed host plus user/group resolution.
type Host interface {
	// Root is the directory treated as "/" (for messages).
	Root() string
	// Lstat does not follow a final symlink.
	Lstat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	Readlink(name string) (string, error)
	// LookupUser/LookupGroup resolve names to ids.
	LookupUser(name string) (int, error)
	LookupGroup(name string) (int, error)
	// UserName/GroupName resolve ids to names (the number as text if unknown).
	UserName(uid int) string
	GroupName(gid int) string
	// CanChown reports whether ownership can be changed (running as root).
	CanChown() bool
	// Euid/Egid are the ids new files get when ownership is not changed.
	Euid() int
	Egid() int
}

// OS is the real host rooted at a directory.
type OS struct {
	root       string
	euid, egid int

	mu     sync.Mutex
	users  map[string]int
	groups map[string]int
	unames map[int]string
	gnames map[int]string
	// Failed lookups are remembered too: a user that does not exist yet
	// (package not installed) is asked about once per file otherwise.
	missing map[string]error
}

// New returns the host rooted at root ("" means "/").
func New(root string) (*OS, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", root, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("root %s is not a directory", abs)
	}
	return &OS{
		root: abs, euid: os.Geteuid(), egid: os.Getegid(),
		users: map[string]int{}, groups: map[string]int{},
		unames: map[int]string{}, gnames: map[int]string{},
	}, nil
}

// Root returns the absolute root directory.
func (o *OS) Root() string { return o.root }

// Real maps a path as under "/" to the real path under the root.
func (o *OS) Real(name string) string {
	if o.root == "/" {
		return filepath.Clean("/" + name)
	}
	return filepath.Join(o.root, filepath.Clean("/"+name))
}

// Lstat implements Host.
func (o *OS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(o.Real(name)) }

// ReadFile implements Host; it refuses to follow a final symlink.
func (o *OS) ReadFile(name string) ([]byte, error) {
	f, err := os.OpenFile(o.Real(name), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return io.ReadAll(f)
}

// Readlink implements Host.
func (o *OS) Readlink(name string) (string, error) { return os.Readlink(o.Real(name)) }

// CanChown implements Host.
func (o *OS) CanChown() bool { return o.euid == 0 }

// Euid implements Host.
func (o *OS) Euid() int { return o.euid }

// Egid implements Host.
func (o *OS) Egid() int { return o.egid }

// LookupUser implements Host (os/user: the running system's user database).
func (o *OS) LookupUser(name string) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.users[name]; ok {
		return id, nil
	}
	if err, ok := o.missing["u:"+name]; ok {
		return -1, err
	}
	u, err := user.Lookup(name)
	if err != nil {
		err = fmt.Errorf("user %q: %w", name, err)
		o.remember("u:"+name, err)
		return -1, err
	}
	id, err := strconv.Atoi(u.Uid)
	if err != nil {
		return -1, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	o.users[name] = id
	return id, nil
}

// LookupGroup implements Host.
func (o *OS) LookupGroup(name string) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.groups[name]; ok {
		return id, nil
	}
	if err, ok := o.missing["g:"+name]; ok {
		return -1, err
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		err = fmt.Errorf("group %q: %w", name, err)
		o.remember("g:"+name, err)
		return -1, err
	}
	id, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q: gid %q: %w", name, g.Gid, err)
	}
	o.groups[name] = id
	return id, nil
}

func (o *OS) remember(key string, err error) {
	if o.missing == nil {
		o.missing = map[string]error{}
	}
	o.missing[key] = err
}

// UserName implements Host.
func (o *OS) UserName(uid int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n, ok := o.unames[uid]; ok {
		return n
	}
	n := strconv.Itoa(uid)
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	o.unames[uid] = n
	return n
}

// GroupName implements Host.
func (o *OS) GroupName(gid int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n, ok := o.gnames[gid]; ok {
		return n
	}
	n := strconv.Itoa(gid)
	if g, err := user.LookupGroupId(n); err == nil {
		n = g.Name
	}
	o.gnames[gid] = n
	return n
}

// Owner returns the uid and gid of a FileInfo from Lstat (-1 if unknown).
func Owner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// Perm returns the permission bits of fi including setuid/setgid/sticky.
func Perm(fi fs.FileInfo) fs.FileMode {
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// SHA256 returns the hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// IsTemp reports whether a base name is one of our temporary files.
func IsTemp(base string) bool {
	return strings.HasPrefix(base, ".") && strings.Contains(base, TempMarker)
}

// TempPattern is the os.CreateTemp pattern for a destination base name.
func TempPattern(base string) string { return "." + tempBase(base) + TempMarker + "*" }

// tempBase shortens long base names so that temporary names stay within
// the 255-byte file name limit (a 245-character domain's DOMAIN-config.js).
func tempBase(base string) string {
	const keep = 255 - 1 - len(TempMarker) - 20
	if len(base) > keep {
		return base[:keep]
	}
	return base
}
