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
		name:    "rollback",
		summary: "restore the files of an earlier apply from the backups (default: the one before the last)",
		usage:   "rollback SPEC [--root DIR] [--to N] [-q] [--host H]",
		run:     runRollback,
	})
}

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var host, root string
	var to int
	var quiet bool
	addSpecFlags(fs, &host)
	fs.StringVar(&root, "root", "/", "treat DIR as the filesystem root")
	fs.IntVar(&to, "to", apply.Previous, "serial to restore (see \"serial\" in plan --json); default: the one before the last")
	fs.BoolVar(&quiet, "q", false, "no progress lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: jitsi-agent rollback SPEC [--root DIR] [--to N] [-q] [--host H]")
		fs.PrintDefaults()
	}
	specPath, ok := specArgs(fs, args, &root, stderr)
	if !ok {
		return exitError
	}
	d, ok := loadSpec(specPath, host, stderr)
	if !ok {
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := apply.Options{Root: root, StateDir: d.StateDir, Keep: d.Backups}
	if !quiet {
		opts.Progress = stdout
	}
	res, err := apply.Rollback(ctx, to, opts)
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
