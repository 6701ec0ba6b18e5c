// Package bootstrap turns a fresh Debian 12 / Ubuntu 24.04 host into one
// that runs the spec: Jitsi's apt repository (key fingerprint pinned in the
// spec, signed-by), debconf answers from the spec, the packages of the
// host's roles and the Lua modules of Prosody's Lua version, then the
// agent's own apply and the daemon.
//
// Plan turns a deployment into Steps; Run executes them in order through a
// Runner (the host's apt, dpkg, debconf, gpg and systemctl; a fake in unit
// tests). Every step first checks whether the host is already in its state
// and changes nothing then, so a second run reports no changes. A failing
// step stops the run: nothing after it is done.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// Runner is the host as bootstrap sees it.
type Runner interface {
	// Run runs a command and returns its standard output. stdin may hold
	// secrets: it is never logged or put into errors. The error of a
	// command that ran carries its exit status and the end of its stderr.
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
	// ReadFile reads a host file (an error wrapping fs.ErrNotExist when it
	// is missing).
	ReadFile(path string) ([]byte, error)
	// WriteFile replaces a host file atomically, creating its directory.
	WriteFile(path string, data []byte, mode fs.FileMode) error
	// Fetch downloads a URL (https, http or file), at most MaxFetch bytes.
	Fetch(ctx context.Context, url string) ([]byte, error)
	// DpkgLock reports whether another process holds dpkg's lock, and
	// which file.
	DpkgLock() (path string, locked bool, err error)
}

// MaxFetch bounds a downloaded key.
const MaxFetch = 1 << 20

// Step is one idempotent step.
type Step struct {
	// Name is the step's progress label ("jitsi key", "packages").
	Name string
	// Does says what the step does (the dry run prints it).
	Does string
	// do checks and, when needed, changes the host. It returns what it
	// changed ("" for nothing).
	do func(ctx context.Context, r Runner) (string, error)
}

// Result is what a run did.
type Result struct {
	// Changed lists "step: what changed" for every step that changed
	// something; empty on a host already in the spec's state.
	Changed []string
}

// StepError is the failure of one step; the steps after it were not run.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: %v (bootstrap stopped here; the steps after it were not run)", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Run executes the steps in order, printing one progress line per step to
// progress. It stops at the first failing step.
func Run(ctx context.Context, steps []Step, r Runner, progress io.Writer) (Result, error) {
	var res Result
	for i, s := range steps {
		start := time.Now()
		changed, err := s.do(ctx, r)
		if err != nil {
			fmt.Fprintf(progress, "bootstrap: [%d/%d] %s: FAILED\n", i+1, len(steps), s.Name)
			return res, &StepError{Step: s.Name, Err: err}
		}
		if changed == "" {
			fmt.Fprintf(progress, "bootstrap: [%d/%d] %s: unchanged\n", i+1, len(steps), s.Name)
			continue
		}
		res.Changed = append(res.Changed, s.Name+": "+changed)
		fmt.Fprintf(progress, "bootstrap: [%d/%d] %s: %s (%s)\n", i+1, len(steps), s.Name, changed, time.Since(start).Round(100*time.Millisecond))
	}
	return res, nil
}

// PrintPlan writes the steps without running any (the dry run).
func PrintPlan(w io.Writer, steps []Step) {
	for i, s := range steps {
		fmt.Fprintf(w, "%d. %s: %s\n", i+1, s.Name, s.Does)
	}
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
