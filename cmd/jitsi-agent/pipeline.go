package main

import (
	"fmt"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/commands"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// specOptions builds spec.Options from the spec flags of the call
// (-host, -var, -var-file).
func specOptions(c *cli.Call) (spec.Options, error) {
	opts, err := varOptions(c)
	opts.Host = c.String("host")
	return opts, err
}

// varOptions builds spec.Options from -var and -var-file only.
func varOptions(c *cli.Call) (spec.Options, error) {
	opts := spec.Options{VarFiles: c.Strings("var-file")}
	for _, kv := range c.Strings("var") {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return opts, fmt.Errorf("-var wants NAME=VALUE, got %q", kv)
		}
		if opts.Vars == nil {
			opts.Vars = map[string]string{}
		}
		opts.Vars[name] = val
	}
	return opts, nil
}

// loadSpecResult parses and validates a spec with the call's spec flags,
// printing diagnostics (warnings included) to stderr. ok is false when there
// were errors.
func loadSpecResult(c *cli.Call, path string) (*spec.Result, bool) {
	opts, err := specOptions(c)
	if err != nil {
		printError(c.Stderr, err)
		return nil, false
	}
	return loadSpecOpts(c, path, opts)
}

// loadSpecOpts is loadSpecResult with explicit options.
func loadSpecOpts(c *cli.Call, path string, opts spec.Options) (*spec.Result, bool) {
	res := spec.Load(path, opts)
	if len(res.Diags) > 0 {
		res.WriteDiagnostics(c.Stderr)
		fmt.Fprintln(c.Stderr)
	}
	return res, !res.HasErrors()
}

// loadSpec is loadSpecResult for callers that need only the deployment.
func loadSpec(c *cli.Call, path string) (*spec.Deployment, bool) {
	res, ok := loadSpecResult(c, path)
	if !ok {
		return nil, false
	}
	return res.Deployment, true
}

// hostRoot checks a --root value (commands.HostRoot).
func hostRoot(root string) (string, error) { return commands.HostRoot(root) }

// rootArg resolves the call's -root flag (see hostRoot); errors go to
// stderr and ok is false.
func rootArg(c *cli.Call) (string, bool) {
	r, err := hostRoot(c.String("root"))
	if err != nil {
		printError(c.Stderr, err)
		return "", false
	}
	return r, true
}
