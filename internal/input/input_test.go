package input

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withDeadline fails the test when f does not return in time: a read that
// blocks (a FIFO without a writer) must never hang a command.
func withDeadline(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("read did not return within 10s (blocked)")
	}
}

func TestReadFileRegular(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.hcl")
	os.WriteFile(p, []byte("domain = \"x\"\n"), 0o600)
	b, err := ReadFile(p, 0)
	if err != nil || string(b) != "domain = \"x\"\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
}

func TestReadFileMissing(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "nope"), 0)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want ErrNotExist, got %v", err)
	}
}

func TestReadFileFIFONeverBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	withDeadline(t, func() {
		_, err := ReadFile(p, 0)
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("FIFO: want a not-a-regular-file error, got %v", err)
		}
	})
}

func TestReadFileRefusesPseudoFiles(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "cert.pem")
	os.Symlink("/dev/zero", link)
	environ := filepath.Join(dir, "env")
	os.Symlink("/proc/self/environ", environ)
	for _, p := range []string{"/dev/zero", "/proc/self/environ", "/sys/kernel/mm/transparent_hugepage/enabled", link, environ, "/dev/../proc/self/environ"} {
		withDeadline(t, func() {
			_, err := ReadFile(p, 0)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Errorf("%s: want a refusal, got %v", p, err)
			}
		})
	}
}

func TestReadFileLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	os.WriteFile(p, make([]byte, 2049), 0o600)
	if _, err := ReadFile(p, 2048); err == nil || !strings.Contains(err.Error(), "limited to 2048") {
		t.Fatalf("want a size error, got %v", err)
	}
	if b, err := ReadFile(p, 4096); err != nil || len(b) != 2049 {
		t.Fatalf("within the limit: %d, %v", len(b), err)
	}
}

func TestReadFileDirectory(t *testing.T) {
	if _, err := ReadFile(t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("want a directory error, got %v", err)
	}
}

func TestReadAll(t *testing.T) {
	if _, err := ReadAll(strings.NewReader(strings.Repeat("x", 11)), "stdin", 10); err == nil {
		t.Fatal("11 bytes with a limit of 10 accepted")
	}
	if b, err := ReadAll(strings.NewReader("token"), "stdin", 10); err != nil || string(b) != "token" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
}

func TestText(t *testing.T) {
	for _, ok := range []string{"", "plain", "tab\tand\nnewline\r\n", "ünïcödé ✓"} {
		if err := Text(ok); err != nil {
			t.Errorf("Text(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "\xff\xfe", "c1\u0085"} {
		if err := Text(bad); err == nil {
			t.Errorf("Text(%q) accepted", bad)
		}
	}
}
