package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"

	"github.com/jitsi-agent/jitsi-agent/internal/daemon"
)

func runStatus(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	socket, addr, root, asJSON := c.String("socket"), c.String("addr"), c.String("root"), c.Bool("json")
	if socket != "" && addr != "" {
		return c.Usagef("give -socket or -addr, not both")
	}
	sock := socket
	if sock == "" && addr == "" {
		sock = daemon.DefaultSocketPath(root)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := daemon.FetchStatus(ctx, sock, addr)
	if err != nil {
		printError(stderr, err)
		fmt.Fprintln(stderr, "Is the daemon running? (systemctl status jitsi-agent; or pass --socket/--addr)")
		return exitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			printError(stderr, err)
			return exitError
		}
	} else {
		writeStatus(stdout, st, time.Now())
	}
	if ok, _ := st.Healthy(); !ok {
		return exitChanges
	}
	return exitOK
}

func writeStatus(w io.Writer, st *daemon.Status, now time.Time) {
	fmt.Fprintf(w, "jitsi-agent daemon: %s (pid %d", st.State, st.PID)
	if st.Version != "" {
		fmt.Fprintf(w, ", %s", st.Version)
	}
	fmt.Fprintf(w, ", up %s)\n", now.Sub(st.StartedAt).Round(time.Second))
	if _, why := st.Healthy(); why != "" {
		fmt.Fprintf(w, "  problem:      %s\n", why)
	}
	if a := st.LastApply; a != nil {
		fmt.Fprintf(w, "  last apply:   %s (%s ago, %s, %.2fs): %s\n", a.Time.Local().Format(time.DateTime),
			now.Sub(a.Time).Round(time.Second), a.Reason, a.DurationSeconds, a.Result)
		if a.Error != "" {
			fmt.Fprintf(w, "  error:        %s\n", strings.ReplaceAll(a.Error, "\n", "\n                "))
		}
		if len(a.Written) > 0 {
			fmt.Fprintf(w, "  written:      %s\n", strings.Join(a.Written, ", "))
		}
		if len(a.Reloaded) > 0 {
			fmt.Fprintf(w, "  reloaded:     %s\n", strings.Join(a.Reloaded, ", "))
		}
		for _, f := range a.ReloadFailures {
			fmt.Fprintf(w, "  unit failed:  %s: %s\n", f.Unit, f.Error)
		}
	} else {
		fmt.Fprintln(w, "  last apply:   none yet")
	}
	if st.LastSuccess != nil {
		fmt.Fprintf(w, "  last success: %s (%s ago)\n", st.LastSuccess.Local().Format(time.DateTime), now.Sub(*st.LastSuccess).Round(time.Second))
	}
	for _, d := range st.Drift {
		what := "reported, left as is"
		if d.Restored {
			what = "restored"
		}
		fmt.Fprintf(w, "  drift:        %s (%s)\n", d.Path, what)
	}
	for _, p := range st.PendingRestarts {
		fmt.Fprintf(w, "  deferred:     %s since %s", p.Unit, p.Since.Local().Format(time.DateTime))
		if p.Reason != "" {
			fmt.Fprintf(w, " (%s)", p.Reason)
		}
		fmt.Fprintln(w)
	}
	for _, sv := range st.Services {
		line := "ok"
		if !sv.OK {
			line = sv.Problem
		}
		fmt.Fprintf(w, "  service:      %s: %s", sv.Unit, line)
		if sv.Restarts > 0 && sv.LastRestart != nil {
			fmt.Fprintf(w, " (started again %d time(s), last %s)", sv.Restarts, sv.LastRestart.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	for _, c := range st.Certificates {
		left := time.Duration(c.ExpiresInSeconds * float64(time.Second))
		fmt.Fprintf(w, "  certificate:  %s expires %s (in %dd)\n", c.Name, c.NotAfter.Local().Format(time.DateOnly), int(left.Hours()/24))
	}
	fmt.Fprintf(w, "  watching:     %d directories\n", len(st.Watching))
}
