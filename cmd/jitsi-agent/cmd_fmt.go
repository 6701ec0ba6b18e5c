package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// maxFmtInput bounds what fmt reads from one file or stdin.
const maxFmtInput = 4 << 20

func runFmt(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	check, recursive := c.Bool("check"), c.Bool("recursive")
	args := c.Args
	if len(args) == 0 {
		args = []string{"."}
	}
	if len(args) == 1 && args[0] == "-" {
		return fmtStdin(c.Stdin, stdout, stderr, check)
	}
	var files []string
	for _, a := range args {
		if a == "-" {
			return c.Usagef(`"-" (stdin) cannot be combined with other paths`)
		}
		fi, err := os.Stat(a)
		if err != nil {
			printError(stderr, err)
			return exitError
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		found, err := hclFiles(a, recursive)
		if err != nil {
			printError(stderr, err)
			return exitError
		}
		files = append(files, found...)
	}
	code := exitOK
	for _, p := range files {
		if !fmtFile(p, stdout, stderr, check) {
			code = exitError
		}
	}
	return code
}

// hclFiles lists the .hcl files of dir (and of its subdirectories when
// recursive; hidden directories are skipped).
func hclFiles(dir string, recursive bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && (!recursive || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".hcl") {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// fmtStdin formats stdin to stdout (with -check: prints nothing, exit 1 if
// it is not formatted).
func fmtStdin(stdin io.Reader, stdout, stderr io.Writer, check bool) int {
	src, err := io.ReadAll(io.LimitReader(stdin, maxFmtInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "Error: read stdin: %v\n", err)
		return exitError
	}
	if len(src) > maxFmtInput {
		fmt.Fprintf(stderr, "Error: stdin is larger than %d MiB; that is not a spec\n", maxFmtInput>>20)
		return exitError
	}
	out, diags := spec.Format("<stdin>", src)
	if diags.HasErrors() {
		spec.WriteDiagnostics(stderr, diags, nil, nil)
		return exitError
	}
	if check {
		if !bytes.Equal(out, src) {
			return exitError
		}
		return exitOK
	}
	if _, err := stdout.Write(out); err != nil {
		return exitError
	}
	return exitOK
}

// fmtFile formats one file in place (or with check only lists it); it
// prints the names of files that were (or would be) changed.
func fmtFile(p string, stdout, stderr io.Writer, check bool) bool {
	st, err := os.Stat(p)
	if err != nil {
		printError(stderr, err)
		return false
	}
	if st.Size() > maxFmtInput {
		fmt.Fprintf(stderr, "Error: %s is larger than %d MiB; that is not a spec\n", p, maxFmtInput>>20)
		return false
	}
	src, err := os.ReadFile(p)
	if err != nil {
		printError(stderr, err)
		return false
	}
	out, diags := spec.Format(p, src)
	if diags.HasErrors() {
		spec.WriteDiagnostics(stderr, diags, nil, nil)
		fmt.Fprintf(stderr, "jitsi-agent: %s was not changed.\n", p)
		return false
	}
	if bytes.Equal(out, src) {
		return true
	}
	fmt.Fprintln(stdout, p)
	if check {
		return false
	}
	if err := fsys.WriteAtomic(p, out, st.Mode().Perm()); err != nil {
		fmt.Fprintf(stderr, "Error: rewrite %s: %v\n", p, err)
		return false
	}
	return true
}
