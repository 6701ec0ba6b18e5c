package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/stamp"
)

// HostRoot checks a --root value and returns it absolute with symlinks
// resolved, so "is this the real host" is decided on what the writes will
// actually hit. An empty value is refused: an unset $ROOT in a script must
// never silently mean "/".
func HostRoot(root string) (string, error) {
	if strings.TrimSpace(root) == "" {
		return "", fmt.Errorf("--root is empty; give a directory (or / for this host)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("--root %s: %w", root, err)
	}
	// Resolve the longest existing prefix (the rest may be created later).
	existing, rest := abs, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", fmt.Errorf("--root %s: %w", root, err)
	}
	if fi, err := os.Stat(resolved); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("--root %s is not a directory", root)
	}
	return filepath.Join(resolved, rest), nil
}

// NoopKey returns the no-op stamp's key (internal/stamp) for an apply call
// of spec specPath under root (HostRoot's answer) run by the program at exe
// (jitsi-agent-full's path) of build b, or false when the apply has more
// than a file step (units, accounts, firewall, ACME on the real host,
// deferred restarts, -confirm): those always run in full. Both programs
// compute it: the launcher to answer from the stamp, jitsi-agent-full to
// check and record it.
func NoopKey(c *cli.Call, specPath, root, exe string, b Build) (stamp.Key, bool) {
	if c.Bool("restart-deferred") || c.Duration("confirm") != 0 || root == "/" && !(c.Bool("no-reload") && c.Bool("no-acme")) {
		return stamp.Key{}, false
	}
	abs, err := filepath.Abs(specPath)
	if err != nil {
		return stamp.Key{}, false
	}
	dir, err := os.Getwd()
	if err != nil {
		return stamp.Key{}, false
	}
	prog, err := stamp.ProgramID(b.Version+" "+b.Commit, exe)
	if err != nil {
		return stamp.Key{}, false
	}
	// The command line as a digest: -var values may be secrets.
	args := []string{"apply", abs, "-root", root, "-host", c.String("host")}
	for _, v := range c.Strings("var") {
		args = append(args, "-var", v)
	}
	for _, vf := range c.Strings("var-file") {
		a, err := filepath.Abs(vf)
		if err != nil {
			return stamp.Key{}, false
		}
		args = append(args, "-var-file", a)
	}
	for _, f := range []string{"q", "no-reload", "overwrite-drift", "no-acme"} {
		if c.Bool(f) {
			args = append(args, "-"+f)
		}
	}
	// Who runs it: root sets owners that another user can only report.
	args = append(args, "euid="+strconv.Itoa(os.Geteuid()), "egid="+strconv.Itoa(os.Getegid()))
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	return stamp.Key{Program: prog, Args: []string{hex.EncodeToString(sum[:])}, Dir: dir}, true
}
