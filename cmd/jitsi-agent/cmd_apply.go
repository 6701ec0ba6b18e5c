package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jitsi-agent/jitsi-agent/internal/apply"
)

func init() {
	register(command{
		name:    "apply",
		summary: "stage, validate and atomically write the deployment's files (safe to re-run)",
		usage:   "apply SPEC [--root DIR] [-q] [--host H] [-var name=value]",
		run:     runApply,
	})
}

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var host, root string
	var quiet bool
	addSpecFlags(fs, &host)
	fs.StringVar(&root, "root", "/", "treat DIR as the filesystem root")
	fs.BoolVar(&quiet, "q", false, "no progress lines (notices and errors still go to stderr)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: jitsi-agent apply SPEC [--root DIR] [-q] [--host H] [-var name=value]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError
	}
	d, ok := loadSpec(pos[0], host, stderr)
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid; nothing was changed.\n", pos[0])
		return exitError
	}
	set, err := desiredState(d, root)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := apply.Options{Root: root, StateDir: d.StateDir, Keep: d.Backups}
	if !quiet {
		opts.Progress = stdout
	}
	res, err := apply.Apply(ctx, set, opts)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
	if quiet {
		for _, n := range res.Notices {
			fmt.Fprintf(stderr, "jitsi-agent: notice: %s\n", n)
		}
	} else if len(res.Units) > 0 {
		fmt.Fprintf(stdout, "jitsi-agent: reload needed: %s\n", strings.Join(res.Units, " "))
	}
	return exitOK
}
