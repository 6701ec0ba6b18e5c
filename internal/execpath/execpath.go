// Package execpath finds jitsi-agent's helper programs the way git finds
// git-foo: in $JITSI_AGENT_EXEC_PATH when it is set, else next to the
// running executable (make build, a release tarball's usr/bin), else in
// ../libexec/jitsi-agent from it (the Debian package: /usr/bin/jitsi-agent
// runs /usr/libexec/jitsi-agent/jitsi-agent-full, which runs
// jitsi-agent-import next to it).
package execpath

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Env is the variable that names the directory of the helper programs.
const Env = "JITSI_AGENT_EXEC_PATH"

// Find returns the absolute path, symlinks resolved, of the helper program
// name, or an error naming the places it looked.
func Find(name string) (string, error) {
	var dirs []string
	if d := os.Getenv(Env); d != "" {
		dirs = append(dirs, d)
	} else if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		dirs = append(dirs, dir, filepath.Join(dir, "..", "libexec", "jitsi-agent"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("the %s program was not found in %s; install the jitsi-agent package, or build it with 'make build' (it goes next to jitsi-agent), or set %s to its directory", name, strings.Join(dirs, ", "), Env)
}
