package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHistoryMasksByValue(t *testing.T) {
	dir := t.TempDir()
	const old = "0ld-app-secret-0123456789abcdef0123"
	if err := Record(dir, old, "short"); err != nil {
		t.Fatal(err)
	}
	h, err := LoadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Contains(old) || h.Contains("short") {
		t.Fatalf("contains: old=%v short=%v", h.Contains(old), h.Contains("short"))
	}
	for in, want := range map[string]string{
		"-JITSI_APP_SECRET=" + old + "\n":             "-JITSI_APP_SECRET=(sensitive)\n",
		"a " + old + old + " b":                       "a (sensitive)(sensitive) b",
		"-muc_max_occupants = 50\n":                   "-muc_max_occupants = 50\n",
		"token_lifetime = abcdefghijklmnopqrstuvwxyz": "token_lifetime = abcdefghijklmnopqrstuvwxyz",
		old[:len(old)-1]:                              old[:len(old)-1],
	} {
		if got := h.Mask(in, "(sensitive)"); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	// The file holds keyed hashes, never the value.
	b, _ := os.ReadFile(filepath.Join(dir, HistoryFile))
	if strings.Contains(string(b), old) || strings.Contains(string(b), "0ld-app") {
		t.Fatal("history file holds the secret in clear")
	}
	if fi, _ := os.Stat(filepath.Join(dir, HistoryFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("history mode %04o", fi.Mode().Perm())
	}
	// A second history (another key) does not recognise the value.
	other, _ := LoadHistory(t.TempDir())
	if other.Contains(old) {
		t.Fatal("fresh history contains the value")
	}
}

func TestHistoryOverlappingValues(t *testing.T) {
	h, _ := LoadHistory(t.TempDir())
	h.Add("abcdefgh12345678", "12345678")
	if got := h.Mask("x abcdefgh12345678 y 12345678 z", "*"); got != "x * y * z" {
		t.Fatalf("got %q", got)
	}
}

func BenchmarkHistoryMask(b *testing.B) {
	h, _ := LoadHistory(b.TempDir())
	for _, v := range []string{"0123456789abcdef0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn", "turn-secret-value-xyz"} {
		h.Add(v)
	}
	line := strings.Repeat("muc_max_occupants = 50; ", 4)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Mask(line, "(sensitive)")
	}
}
