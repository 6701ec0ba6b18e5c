package commands

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

// Build is what version, the daemon's status and the metrics' build_info
// label show.
type Build struct {
	Version, Commit, Date string
}

// ResolveBuild completes what `make build` stamped into a program's main
// package (-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X
// main.date=<RFC 3339>") with the Go toolchain's VCS stamp (vcs.revision,
// vcs.time, vcs.modified), for a plain `go build`.
func ResolveBuild(version, commit, date string) Build {
	b := Build{Version: version, Commit: commit, Date: date}
	if b.Version != "" && b.Commit != "" && b.Date != "" {
		return b
	}
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
	}
	if b.Version == "" {
		b.Version = "dev"
		if b.Commit != "" {
			b.Version += "-" + short(b.Commit)
			if dirty {
				b.Version += "-dirty"
			}
		}
	}
	return b
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// Run is the version command.
func (b Build) Run(c *cli.Call) int {
	fmt.Fprintf(c.Stdout, "jitsi-agent %s\n", b.Version)
	if b.Commit != "" {
		fmt.Fprintf(c.Stdout, "commit:  %s\n", b.Commit)
	}
	if b.Date != "" {
		fmt.Fprintf(c.Stdout, "built:   %s\n", b.Date)
	}
	fmt.Fprintf(c.Stdout, "go:      %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// ShortCommit is the commit's first 12 hex digits.
func (b Build) ShortCommit() string { return short(b.Commit) }
