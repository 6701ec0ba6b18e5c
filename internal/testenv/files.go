package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteUnder writes content (mode 0644) at p as laid out under root (a
// fake host tree: p is an absolute host path such as /usr/bin/prosody),
// creating the parent directories.
func WriteUnder(t testing.TB, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
