package fsys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// These helpers take real paths (already under the root).

// Stage writes data to a new temporary file next to dest, named
// ".<base>.jitsi-agent-tmp-*", sets its mode and (when uid or gid >= 0) its
// owner before anything else can see it under the final name, fsyncs and
// closes it. It returns the temporary path.
func Stage(dest string, data []byte, perm fs.FileMode, uid, gid int) (tmp string, err error) {
	dir, base := filepath.Split(dest)
	f, err := os.CreateTemp(dir, TempPattern(base)) // O_EXCL, 0600
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", dest, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if uid >= 0 || gid >= 0 {
		if err = f.Chown(uid, gid); err != nil {
			return "", fmt.Errorf("stage %s: chown: %w", dest, err)
		}
	}
	if err = f.Chmod(perm); err != nil { // fchmod: no umask
		return "", fmt.Errorf("stage %s: chmod: %w", dest, err)
	}
	if _, err = f.Write(data); err != nil {
		return "", fmt.Errorf("stage %s: write: %w", dest, err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("stage %s: fsync: %w", dest, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("stage %s: close: %w", dest, err)
	}
	return f.Name(), nil
}

// StageSymlink creates a temporary symlink to target next to dest.
func StageSymlink(dest, target string) (string, error) {
	dir, base := filepath.Split(dest)
	for i := 0; i < 100; i++ {
		var rnd [6]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return "", fmt.Errorf("stage link %s: %w", dest, err)
		}
		tmp := filepath.Join(dir, "."+tempBase(base)+TempMarker+hex.EncodeToString(rnd[:]))
		err := os.Symlink(target, tmp)
		if err == nil {
			return tmp, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("stage link %s: %w", dest, err)
		}
	}
	return "", fmt.Errorf("stage link %s: no free temporary name", dest)
}

// Commit renames tmp over dest (replacing a symlink at dest, never following
// it) and fsyncs the directory so the rename is durable.
func Commit(tmp, dest string) error {
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("rename onto %s: %w", dest, err)
	}
	return SyncDir(filepath.Dir(dest))
}

// SyncDir fsyncs a directory.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// WriteAtomic replaces dest with data through a staged temporary file
// (mode perm, owner unchanged).
func WriteAtomic(dest string, data []byte, perm fs.FileMode) error {
	tmp, err := Stage(dest, data, perm, -1, -1)
	if err != nil {
		return err
	}
	if err := Commit(tmp, dest); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// MkdirAll creates dir and its missing parents with mode 0755 and returns the
// directories it created, outermost first (so a caller can undo it).
func MkdirAll(dir string, perm fs.FileMode) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("mkdir %s: %s exists and is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("mkdir %s: %w", dir, err)
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return created, fmt.Errorf("mkdir %s: %w", missing[i], err)
		}
		if err := os.Chmod(missing[i], perm); err != nil { // undo umask
			return created, fmt.Errorf("chmod %s: %w", missing[i], err)
		}
		created = append(created, missing[i])
	}
	if len(created) > 0 {
		if err := SyncDir(filepath.Dir(created[0])); err != nil {
			return created, err
		}
	}
	return created, nil
}

// CleanTemps removes jitsi-agent temporary files directly inside dir and
// returns their paths. A missing dir is not an error.
func CleanTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("scan %s for temporary files: %w", dir, err)
	}
	var removed []string
	for _, e := range ents {
		if !IsTemp(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			continue // never ours
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove leftover %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// MkdirPrivate creates dir with mode 0700 when it is missing, and its
// missing parents with 0755 (os.MkdirAll(dir, 0o700) would make every
// parent, e.g. ROOT/var and ROOT/var/lib under --root, 0700 too).
func MkdirPrivate(dir string) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Lstat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: exists and is not a directory", dir)
		}
		return nil
	}
	if _, err := MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}
