package main

import "github.com/jitsi-agent/jitsi-agent/internal/commands"

// Set at build time by `make build`:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// A plain `go build` leaves them empty; the Go toolchain's VCS stamp
// (vcs.revision, vcs.time, vcs.modified) fills in what it can.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildVersion is what version, the daemon's status and the metrics'
// build_info label show.
func buildVersion() commands.Build { return commands.ResolveBuild(version, commit, date) }
