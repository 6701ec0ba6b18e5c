package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"

	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

func runRender(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	out, quiet := c.String("out"), c.Bool("q")
	pos := c.Args
	if out == "" {
		return c.Usagef("render needs -out DIR")
	}
	if r, err := hostRoot(out); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", strings.Replace(err.Error(), "--root", "--out", 1))
		return exitError
	} else if r == "/" {
		fmt.Fprintln(stderr, "Error: --out resolves to /; render writes a tree for inspection or image builds. To change this host, use apply.")
		return exitError
	} else {
		out = r
	}
	d, ok := loadSpec(c, pos[0])
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid; nothing was written.\n", pos[0])
		return exitError
	}
	// Render once with throwaway secrets so a template error writes nothing,
	// not even the state directory; when the state directory under out is
	// complete, that render is the result (agent.Persisted, as in apply).
	readOnly, err := agent.DesiredStateReadOnly(d, out, time.Now())
	if err != nil {
		printError(stderr, err, "Nothing was written.")
		return exitError
	}
	set, err := agent.Persisted(d, out, time.Now(), readOnly)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	for _, f := range set.Files {
		if err := writeRendered(out, f); err != nil {
			printError(stderr, err)
			return exitError
		}
		if !quiet {
			fmt.Fprintf(stdout, "  %s %s\n", kindMark(f), f.Path)
		}
	}
	if !quiet {
		fmt.Fprintf(stdout, "Rendered %d files for %s (host %q) under %s. Ownership is not applied by render; use apply.\n", len(set.Files), d.Domain, d.Host.Name, out)
	}
	return exitOK
}

func kindMark(f render.File) string {
	if f.Kind == render.KindSymlink {
		return "->"
	}
	return fmt.Sprintf("%04o", f.Mode.Perm())
}

// writeRendered writes one file or link under out, replacing what is there.
func writeRendered(out string, f render.File) error {
	p := filepath.Join(out, f.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", f.Path, err)
	}
	if f.Kind == render.KindSymlink {
		if cur, err := os.Readlink(p); err == nil && cur == f.Target {
			return nil
		}
		os.Remove(p)
		if err := os.Symlink(f.Target, p); err != nil {
			return fmt.Errorf("link %s: %w", f.Path, err)
		}
		return nil
	}
	// A render tree is an artefact, not a live configuration: no temp file
	// and fsync dance (apply does that), just the bytes and the mode. Never
	// write through a link someone left where a file goes.
	if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("replace %s: %w", f.Path, err)
		}
	}
	if err := os.WriteFile(p, f.Content, f.Mode.Perm()); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := os.Chmod(p, f.Mode.Perm()); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}
