package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func init() {
	register(command{
		name:    "fmt",
		summary: "rewrite specs in canonical HCL style (-check: only report)",
		usage:   "fmt [-check] SPEC...",
		run:     runFmt,
	})
}

func runFmt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "do not write; exit 1 and list the files that are not formatted")
	fs.Usage = func() { fmt.Fprintln(stderr, "Usage: jitsi-agent fmt [-check] SPEC..."); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError
	}
	if len(pos) == 0 {
		fs.Usage()
		return exitError
	}
	code := exitOK
	for _, p := range pos {
		src, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			code = exitError
			continue
		}
		out, diags := spec.Format(p, src)
		if diags.HasErrors() {
			spec.WriteDiagnostics(stderr, diags, nil, nil)
			fmt.Fprintf(stderr, "jitsi-agent: %s was not changed.\n", p)
			code = exitError
			continue
		}
		if bytes.Equal(out, src) {
			continue
		}
		if *check {
			fmt.Fprintln(stdout, p)
			code = exitError
			continue
		}
		if err := replaceFile(p, out); err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			code = exitError
			continue
		}
		fmt.Fprintln(stdout, p)
	}
	return code
}

// replaceFile atomically rewrites path, keeping its mode.
func replaceFile(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := fsys.WriteAtomic(path, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return nil
}
