package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// JSONVersion is the version of the --json schema. Additive changes keep it;
// renaming or removing a field bumps it.
const JSONVersion = 1

// jsonReport is the --json schema.
type jsonReport struct {
	Version    int          `json:"version"`
	Domain     string       `json:"domain,omitempty"`
	Host       string       `json:"host,omitempty"`
	Started    string       `json:"started"`
	DurationMS int64        `json:"duration_ms"`
	Status     Status       `json:"status"` // worst status: pass, warn or fail (skip counts as pass)
	ExitCode   int          `json:"exit_code"`
	Summary    jsonSummary  `json:"summary"`
	Checks     []jsonResult `json:"checks"`
}

type jsonSummary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

type jsonResult struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Status     Status `json:"status"`
	Seen       string `json:"seen"`
	Fix        string `json:"fix,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// WriteJSON writes the report in the versioned machine-readable schema.
func (r *Report) WriteJSON(w io.Writer) error {
	c := r.Counts()
	st := r.Worst()
	if st == Skip {
		st = Pass
	}
	jr := jsonReport{
		Version: JSONVersion, Domain: r.Domain, Host: r.Host,
		Started:    r.Started.UTC().Format(time.RFC3339),
		DurationMS: r.Duration.Milliseconds(),
		Status:     st, ExitCode: r.ExitCode(),
		Summary: jsonSummary{Pass: c[Pass], Warn: c[Warn], Fail: c[Fail], Skip: c[Skip]},
		Checks:  make([]jsonResult, len(r.Results)),
	}
	for i, res := range r.Results {
		jr.Checks[i] = jsonResult{ID: res.ID, Title: res.Title, Status: res.Status, Seen: res.Seen, Fix: res.Fix,
			DurationMS: res.Duration.Milliseconds()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jr); err != nil {
		return fmt.Errorf("write doctor report: %w", err)
	}
	return nil
}

// TextOptions tune the human output.
type TextOptions struct {
	// ASCII uses PASS/WARN/FAIL/SKIP words instead of ✓ ! ✗ -.
	ASCII bool
}

func mark(s Status, ascii bool) string {
	if ascii {
		return map[Status]string{Pass: "PASS", Warn: "WARN", Fail: "FAIL", Skip: "SKIP"}[s]
	}
	return map[Status]string{Pass: "✓", Warn: "!", Fail: "✗", Skip: "-"}[s]
}

// WriteText writes the report for a person: one aligned line per check,
// what was seen, and the fix indented under every warning and failure.
func (r *Report) WriteText(w io.Writer, o TextOptions) error {
	ew := &errWriter{w: w}
	head := "jitsi-agent doctor"
	if r.Domain != "" {
		head += ": " + r.Domain
	}
	if r.Host != "" {
		head += " (host " + r.Host + ")"
	}
	ew.printf("%s\n\n", head)
	width := 0
	for _, res := range r.Results {
		width = max(width, utf8.RuneCountInString(res.Title))
	}
	indent := strings.Repeat(" ", 4)
	if o.ASCII {
		indent = strings.Repeat(" ", 7)
	}
	for _, res := range r.Results {
		m := mark(res.Status, o.ASCII)
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(res.Title))
		if o.ASCII {
			ew.printf("  %-4s %s%s  %s\n", m, res.Title, pad, res.Seen)
		} else {
			ew.printf("  %s %s%s  %s\n", m, res.Title, pad, res.Seen)
		}
		if res.Fix != "" && (res.Status == Warn || res.Status == Fail) {
			ew.printf("%sfix: %s\n", indent, res.Fix)
		}
	}
	c := r.Counts()
	ew.printf("\n%d passed, %d warning(s), %d failed, %d skipped in %s\n",
		c[Pass], c[Warn], c[Fail], c[Skip], r.Duration.Round(time.Millisecond))
	switch r.Worst() {
	case Fail:
		ew.printf("Not ready: fix the failures above.\n")
	case Warn:
		ew.printf("Ready, with warnings.\n")
	default:
		ew.printf("Ready.\n")
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	if _, err := fmt.Fprintf(e.w, format, args...); err != nil {
		e.err = fmt.Errorf("write doctor report: %w", err)
	}
}
