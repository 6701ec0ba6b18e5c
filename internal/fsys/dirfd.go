package fsys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is a directory under the root, opened by walking its path one
// component at a time with openat(O_NOFOLLOW|O_DIRECTORY) from the root.
// Every write through it (stage, rename, remove) is relative to that file
// descriptor, so once a Dir is open, swapping one of its parents for a
// symlink cannot redirect the writes elsewhere.
type Dir struct {
	f    *os.File
	name string // as under "/", for messages
	real string // real path when opened (for tools that need a path)
}

// Name is the directory as under "/".
func (d *Dir) Name() string { return d.name }

// Real is the directory's real path at the time it was opened.
func (d *Dir) Real() string { return d.real }

// Close releases the descriptor.
func (d *Dir) Close() error { return d.f.Close() }

// OpenDir opens dir (as under "/") beneath the root without following any
// symlink on the way. With create, missing directories are made with mode
// perm (exactly, umask undone) and returned outermost first.
func (o *OS) OpenDir(dir string, create bool, perm fs.FileMode) (*Dir, []string, error) {
	clean := filepath.Clean("/" + dir)
	fd, err := unix.Open(o.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open root %s: %w", o.root, err)
	}
	var created []string
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		if part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		nfd, err := unix.Openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, part, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return nil, created, fmt.Errorf("mkdir %s: %w", next, err)
			}
			nfd, err = unix.Openat(fd, part, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == nil {
				if err := unix.Fchmod(nfd, uint32(perm.Perm())); err != nil {
					unix.Close(nfd)
					unix.Close(fd)
					return nil, created, fmt.Errorf("chmod %s: %w", next, err)
				}
				if err := unix.Fsync(fd); err != nil {
					unix.Close(nfd)
					unix.Close(fd)
					return nil, created, fmt.Errorf("fsync %s: %w", cur, err)
				}
				created = append(created, o.Real(next))
			}
		}
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return nil, created, fmt.Errorf("refusing to write under %s: it is a symlink or not a directory", next)
			}
			return nil, created, fmt.Errorf("open %s: %w", next, err)
		}
		fd = nfd
		cur = next
	}
	return &Dir{f: os.NewFile(uintptr(fd), o.Real(clean)), name: clean, real: o.Real(clean)}, created, nil
}

func (d *Dir) fd() int { return int(d.f.Fd()) }

// tempName returns a fresh ".<base>.jitsi-agent-tmp-<random>" name.
func tempName(base string) (string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	return "." + tempBase(base) + TempMarker + hex.EncodeToString(rnd[:]), nil
}

// Stage writes data to a new temporary file in d next to base (O_EXCL,
// O_NOFOLLOW), sets owner (uid/gid >= 0) and mode before writing, fsyncs
// and closes it, and returns its name.
func (d *Dir) Stage(base string, data []byte, perm fs.FileMode, uid, gid int) (string, error) {
	for i := 0; i < 100; i++ {
		name, err := tempName(base)
		if err != nil {
			return "", err
		}
		fd, err := unix.Openat(d.fd(), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("stage %s: %w", filepath.Join(d.name, base), err)
		}
		f := os.NewFile(uintptr(fd), filepath.Join(d.real, name))
		if err := stageInto(f, data, perm, uid, gid); err != nil {
			f.Close()
			unix.Unlinkat(d.fd(), name, 0)
			return "", fmt.Errorf("stage %s: %w", filepath.Join(d.name, base), err)
		}
		return name, nil
	}
	return "", fmt.Errorf("stage %s: no free temporary name", filepath.Join(d.name, base))
}

func stageInto(f *os.File, data []byte, perm fs.FileMode, uid, gid int) error {
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return f.Close()
}

// StageSymlink creates a temporary symlink to target in d next to base.
func (d *Dir) StageSymlink(base, target string) (string, error) {
	for i := 0; i < 100; i++ {
		name, err := tempName(base)
		if err != nil {
			return "", err
		}
		err = unix.Symlinkat(target, d.fd(), name)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("stage link %s: %w", filepath.Join(d.name, base), err)
		}
		return name, nil
	}
	return "", fmt.Errorf("stage link %s: no free temporary name", filepath.Join(d.name, base))
}

// Commit renames the staged name over base (replacing a symlink at base,
// never following it) and fsyncs the directory.
func (d *Dir) Commit(name, base string) error {
	if err := unix.Renameat(d.fd(), name, d.fd(), base); err != nil {
		return fmt.Errorf("rename onto %s: %w", filepath.Join(d.name, base), err)
	}
	if err := unix.Fsync(d.fd()); err != nil {
		return fmt.Errorf("fsync dir %s: %w", d.name, err)
	}
	return nil
}

// Remove unlinks name in d (a missing name is not an error).
func (d *Dir) Remove(name string) error {
	if err := unix.Unlinkat(d.fd(), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", filepath.Join(d.name, name), err)
	}
	return nil
}

// Sync fsyncs the directory.
func (d *Dir) Sync() error { return unix.Fsync(d.fd()) }

// OpenFile opens the regular file name in d for reading and attribute
// changes, refusing a symlink.
func (d *Dir) OpenFile(name string) (*os.File, error) {
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(d.real, name)), nil
}
