package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

func runValidate(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	path := c.Args[0]
	if c.Bool("json") {
		return validateJSON(c, path)
	}
	d, ok := loadSpec(c, path)
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid; nothing was changed.\n", path)
		return exitError
	}
	set, err := agent.DesiredStateReadOnly(d, "/nonexistent-state-for-validate", time.Now())
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "Success! %s is valid: %d files for host %q (%s auth).\n", path, len(set.Files), d.Host.Name, d.Auth.Mode)
	return exitOK
}

// validateJSON prints the diagnostics (and a render error, if any) as one
// JSON object on stdout.
func validateJSON(c *cli.Call, path string) int {
	opts, err := specOptions(c)
	if err != nil {
		return c.Usagef("%v", err)
	}
	res := spec.Load(path, opts)
	diags := res.Diags
	if !res.HasErrors() {
		if _, err := agent.DesiredStateReadOnly(res.Deployment, "/nonexistent-state-for-validate", time.Now()); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Render failed", Detail: err.Error()})
		}
	}
	rep := spec.JSON(diags, res.Files, res.Redactions())
	enc := json.NewEncoder(c.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	if !rep.Valid {
		return exitError
	}
	return exitOK
}
