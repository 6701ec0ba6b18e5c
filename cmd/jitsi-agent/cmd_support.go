package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/support"
)

// supportArgs repeats the spec options for the doctor and plan runs the
// bundle includes.
func supportArgs(c *cli.Call, root string) []string {
	var a []string
	if h := c.String("host"); h != "" {
		a = append(a, "-host", h)
	}
	for _, v := range c.Strings("var") {
		a = append(a, "-var", v)
	}
	for _, f := range c.Strings("var-file") {
		a = append(a, "-var-file", f)
	}
	return append(a, "-root", root)
}

func runSupportBundle(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	specPath := c.Args[0]
	root, ok := rootArg(c)
	if !ok {
		return exitError
	}
	res, ok := loadSpecResult(c, specPath)
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid; fix it first ('jitsi-agent validate %s').\n", specPath, specPath)
		return exitError
	}
	d := res.Deployment
	now := time.Now()
	out := c.String("out")
	if out == "" {
		out = "jitsi-agent-support-" + now.UTC().Format("20060102T150405Z") + ".tar.gz"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	set, err := agent.DesiredStateReadOnly(d, root, now)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	history, err := agent.SecretMask(d, root)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	m := support.NewMasker(append(append([]string{}, set.Redact...), d.SecretValues()...), history)
	specText, err := os.ReadFile(specPath)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	in := support.Input{Domain: d.Domain, SpecPath: specPath, Spec: specText, Now: now}
	for _, f := range set.Files {
		in.Files = append(in.Files, support.File{Path: f.Path, Content: f.Content})
	}
	// doctor and plan exactly as the user would run them.
	var doc, docErr, pl bytes.Buffer
	run(append([]string{"doctor", specPath, "-json"}, supportArgs(c, root)...), nil, &doc, &docErr)
	run(append([]string{"plan", specPath}, supportArgs(c, root)...), nil, &pl, &pl)
	if docErr.Len() > 0 { // keep doctor.json parseable; its messages go with the plan's
		pl.WriteString("\n-- doctor's messages --\n")
		pl.Write(docErr.Bytes())
	}
	in.Doctor, in.Plan = doc.Bytes(), pl.Bytes()
	in.Versions = support.Versions(ctx, support.Dpkg{})
	in.Versions["jitsi-agent"] = buildVersion().Version
	var units []string
	for _, comp := range spec.Components {
		if s, ok := d.Services[comp]; ok && s.Unit != "" {
			units = append(units, s.Unit)
		}
	}
	units = append(units, "jitsi-agent.service")
	var jr journal.Reader
	if root == "/" {
		jr = journal.System()
	}
	in.Journals, in.JournalErrors = support.Journals(ctx, jr, units, c.Int("lines"))
	if jr == nil && root != "/" {
		for _, u := range units {
			in.JournalErrors[u] = "not read for --root " + root
		}
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if err := support.Write(f, in, m); err != nil {
		f.Close()
		os.Remove(out)
		printError(stderr, err)
		return exitError
	}
	if err := f.Close(); err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "Wrote %s (mode 0600): the spec, %d rendered files, package versions, doctor and plan reports and the last %d journal lines of %d units, with every secret and token masked.\n",
		out, len(in.Files), c.Int("lines"), len(units))
	return exitOK
}
