package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
)

func runCerts(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	asJSON := c.Bool("json")
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	d, ok := loadSpec(c, specPath)
	if !ok {
		return exitError
	}
	now := time.Now()
	rep, err := certs.BuildReport(d, root, now)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	code := exitOK
	for _, e := range rep.Certificates {
		if e.Warn() {
			code = exitChanges
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			printError(stderr, err)
			return exitError
		}
		return code
	}
	if rep.ACME {
		fmt.Fprintf(stdout, "ACME directory: %s\n", rep.DirectoryURL)
	} else {
		fmt.Fprintln(stdout, "ACME: off (certificates are supplied by you; a placeholder is written while none exists)")
	}
	for _, e := range rep.Certificates {
		fmt.Fprintf(stdout, "\n%s (%s)  %s\n", e.Name, e.KeyType, e.Path)
		switch {
		case e.Problem != "":
			fmt.Fprintf(stdout, "  problem:      %s\n", e.Problem)
		case !e.Deployed:
			fmt.Fprintln(stdout, "  not deployed yet")
		default:
			kind := ""
			if e.Placeholder {
				kind = "  (self-signed placeholder)"
			}
			fmt.Fprintf(stdout, "  names:        %s%s\n", strings.Join(e.Names, ", "), kind)
			fmt.Fprintf(stdout, "  issuer:       %s\n", e.Issuer)
			fmt.Fprintf(stdout, "  not after:    %s (%s)\n", e.NotAfter.Format(time.RFC3339), relative(e.NotAfter, now))
		}
		if !e.NextRenewal.IsZero() {
			fmt.Fprintf(stdout, "  next renewal: %s (%s)\n", e.NextRenewal.Format(time.RFC3339), relative(e.NextRenewal, now))
		}
		if e.LastError != "" {
			fmt.Fprintf(stdout, "  last error:   %s (%s)\n", e.LastError, relative(e.LastErrorAt, now))
			if !e.NextAttempt.IsZero() {
				fmt.Fprintf(stdout, "  next attempt: %s (%s)\n", e.NextAttempt.Format(time.RFC3339), relative(e.NextAttempt, now))
			}
		} else if rep.ACME {
			fmt.Fprintln(stdout, "  last error:   none")
		}
	}
	return code
}

// relative renders t relative to now: "in 3d4h", "2h ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	suffix, prefix := "", "in "
	if d < 0 {
		d, suffix, prefix = -d, " ago", ""
	}
	var s string
	switch {
	case d >= 48*time.Hour:
		s = fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		s = d.Truncate(time.Minute).String()
	default:
		s = d.Truncate(time.Second).String()
	}
	return prefix + s + suffix
}
