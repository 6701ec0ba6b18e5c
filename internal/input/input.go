// Package input reads what jitsi-agent is given — the spec, file()
// targets, template sources, TLS certificates and keys — within bounds, so
// no input can hang a command or exhaust memory:
//
//   - only regular files are read; a FIFO is opened with O_NONBLOCK and
//     refused after fstat, so it never blocks;
//   - paths that resolve into /proc, /sys or /dev (or any file on a proc,
//     sysfs, devpts, debugfs, cgroup... file system) are refused: their
//     sizes lie (/proc/self/environ reports 0 bytes) and their contents
//     are not configuration;
//   - at most a limit of bytes is read, whatever the file's size claims;
//   - Text refuses NUL and other control characters in strings.
package input

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// MaxFile is the default size limit of an input file (1 MiB).
const MaxFile = 1 << 20

// refusedDirs are pseudo file systems that are never configuration.
var refusedDirs = [...]string{"/proc", "/sys", "/dev"}

// pseudoFS are file system magic numbers whose files are refused wherever
// they are mounted.
var pseudoFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.BPF_FS_MAGIC:        "bpf",
}

// Error is a refused input. The message names the path and the fix.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// ReadFile reads the regular file at path, at most limit bytes (limit <= 0
// means MaxFile). A missing file returns an error that satisfies
// errors.Is(err, fs.ErrNotExist).
func ReadFile(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxFile
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d := refusedDir(abs); d != "" {
		return nil, &Error{path, fmt.Sprintf("is under %s, which holds no configuration; point at a regular file", d)}
	}
	// O_NONBLOCK: opening a FIFO for reading never waits for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &Error{path, fmt.Sprintf("not a regular file (%s); point at a file", typeName(st.Mode))}
	}
	// Where the open really landed (symlinks resolved).
	resolved, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		resolved, _ = filepath.EvalSymlinks(abs)
	}
	if d := refusedDir(resolved); d != "" {
		return nil, &Error{path, fmt.Sprintf("resolves to %s under %s, which holds no configuration; point at a regular file", resolved, d)}
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &sfs); err == nil {
		if name, bad := pseudoFS[int64(sfs.Type)]; bad {
			return nil, &Error{path, fmt.Sprintf("is on a %s file system, which holds no configuration", name)}
		}
	}
	if st.Size > limit {
		return nil, &Error{path, fmt.Sprintf("is %d bytes; inputs are limited to %d bytes", st.Size, limit)}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, &Error{path, fmt.Sprintf("grew past %d bytes while being read; inputs are limited to %d bytes", limit, limit)}
	}
	return b, nil
}

// ReadAll reads at most limit bytes from r (a pipe, stdin) and refuses more.
func ReadAll(r io.Reader, what string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxFile
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, &Error{what, fmt.Sprintf("is longer than %d bytes", limit)}
	}
	return b, nil
}

func refusedDir(abs string) string {
	for _, d := range refusedDirs {
		if abs == d || strings.HasPrefix(abs, d+"/") {
			return d
		}
	}
	return ""
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "not a file"
}

// Text reports the first NUL byte, control character (other than tab,
// newline and carriage return) or invalid UTF-8 in s.
func Text(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for i, r := range s {
		switch {
		case r == '\t', r == '\n', r == '\r':
		case r == 0:
			return fmt.Errorf("contains a NUL byte at offset %d", i)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return fmt.Errorf("contains the control character %U at offset %d", r, i)
		}
	}
	return nil
}
