package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DpkgLocks are the locks apt and dpkg take (fcntl write locks).
var dpkgLocks = []string{"/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"}

// System is the real host. gpg runs with a private, temporary GNUPGHOME
// (removed by Close), so bootstrap never touches root's keyring.
type System struct {
	// Locks overrides the dpkg lock files (tests).
	Locks   []string
	gpgHome string
}

// Close removes the temporary gpg home.
func (s *System) Close() error {
	if s.gpgHome == "" {
		return nil
	}
	return os.RemoveAll(s.gpgHome)
}

// Run implements Runner.
func (s *System) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if name == "gpg" {
		if s.gpgHome == "" {
			d, err := os.MkdirTemp("", "jitsi-agent-gpg-")
			if err != nil {
				return nil, err
			}
			s.gpgHome = d
		}
		cmd.Env = append(cmd.Env, "GNUPGHOME="+s.gpgHome)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &tail{max: 2048, buf: &stderr}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = lastLines(stdout.String(), 5)
		}
		if msg != "" {
			return stdout.Bytes(), fmt.Errorf("%w: %s", err, msg)
		}
		return stdout.Bytes(), err
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tail keeps the last max bytes written.
type tail struct {
	max int
	buf *bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

// ReadFile implements Runner.
func (s *System) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// WriteFile implements Runner: a temporary file in the same directory,
// fsync, rename.
func (s *System) WriteFile(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Fetch implements Runner.
func (s *System) Fetch(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, err
		}
		body = f
	case "http", "https":
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", raw, resp.Status)
		}
		body = resp.Body
	default:
		return nil, fmt.Errorf("%s: only https, http and file URLs", raw)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, MaxFetch+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFetch {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a key", raw, MaxFetch)
	}
	return b, nil
}

// DpkgLock implements Runner: F_GETLK on dpkg's lock files (what apt and
// dpkg hold while they run).
func (s *System) DpkgLock() (string, bool, error) {
	locks := s.Locks
	if locks == nil {
		locks = dpkgLocks
	}
	for _, p := range locks {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return p, false, err
		}
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
		err = syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk)
		f.Close()
		if err != nil {
			return p, false, fmt.Errorf("%s: %w", p, err)
		}
		if lk.Type != syscall.F_UNLCK {
			return p, true, nil
		}
	}
	return "", false, nil
}
