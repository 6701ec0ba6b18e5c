// Package journal reads recent log lines of systemd units (journalctl), for
// doctor's known-error explanations and the support bundle. Tests feed
// recorded lines through the Reader interface.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Reader returns up to n of the most recent lines a unit logged, oldest
// first.
type Reader interface {
	Lines(ctx context.Context, unit string, n int) ([]string, error)
}

// Journalctl is the real Reader: journalctl -u UNIT -n N -o short-iso.
type Journalctl struct {
	// Path of journalctl (default "journalctl").
	Path string
	// Since limits how far back to read (default 24h; 0 keeps the default).
	Since time.Duration
}

// MaxLines bounds one unit's read.
const MaxLines = 5000

// Lines implements Reader.
func (j Journalctl) Lines(ctx context.Context, unit string, n int) ([]string, error) {
	bin := j.Path
	if bin == "" {
		bin = "journalctl"
	}
	if n <= 0 || n > MaxLines {
		n = MaxLines
	}
	since := j.Since
	if since <= 0 {
		since = 24 * time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--no-pager", "-q", "-o", "short-iso", "-u", unit, "-n", strconv.Itoa(n),
		"--since", fmt.Sprintf("-%ds", int(since.Seconds())))
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("journalctl -u %s: %w", unit, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// System is journalctl from PATH, or nil when there is none.
func System() Reader {
	p, err := exec.LookPath("journalctl")
	if err != nil {
		return nil
	}
	return Journalctl{Path: p}
}

// Recorded is a Reader over fixed lines per unit (tests, and replaying a
// support bundle).
type Recorded map[string][]string

// Lines implements Reader.
func (r Recorded) Lines(_ context.Context, unit string, n int) ([]string, error) {
	l := r[unit]
	if n > 0 && len(l) > n {
		l = l[len(l)-n:]
	}
	return l, nil
}

// jwtLike matches a JWT (three base64url parts, the first two starting with
// the base64 of '{"'), and the token/jwt query parameters and bearer
// credentials that carry tokens and API keys.
var (
	jwtLike = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_\-=]*`)
	})
	tokenParam = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)((?:^|[?&;\s])(?:jwt|token|auth_token|access_token)=)[^&\s"']+`)
	})
	bearer      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+`) })
	passwordKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)((?:password|passwd|secret|app_secret|static-auth-secret|external_service_secret)\s*[=:]\s*["']?)[^"'\s,;]+`)
	})
)

// Masked is what MaskTokens writes in place of a credential.
const Masked = "(masked)"

// MaskTokens hides JWTs, token= and jwt= query values, bearer credentials
// and password=/secret= values in a log line. Secrets known by value are
// masked by the caller; this catches the ones a log line carries that the
// agent never knew (tokens the app minted).
func MaskTokens(s string) string {
	s = jwtLike().ReplaceAllString(s, Masked)
	s = tokenParam().ReplaceAllString(s, "${1}"+Masked)
	s = bearer().ReplaceAllString(s, "${1}"+Masked)
	return passwordKey().ReplaceAllString(s, "${1}"+Masked)
}
