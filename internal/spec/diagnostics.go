package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/jitsi-agent/jitsi-agent/internal/suggest"
)

// WriteDiagnostics prints every diagnostic Terraform-style: severity and
// summary, file:line:column with the enclosing block, the source line with
// the range underlined, and the detail (which carries the fix). Secret
// values are replaced by "(sensitive)", even in the source snippet.
func (r *Result) WriteDiagnostics(w io.Writer) {
	WriteDiagnostics(w, r.Diags, r.Files, r.redact)
}

// Summary is a one-line form for logs: "file:line:col: summary; and N more".
func (r *Result) Summary() string {
	var first *hcl.Diagnostic
	n := 0
	for _, d := range r.Diags {
		if d.Severity == hcl.DiagError {
			if first == nil {
				first = d
			}
			n++
		}
	}
	if first == nil {
		return ""
	}
	s := first.Summary
	if first.Subject != nil {
		s = fmt.Sprintf("%s:%d:%d: %s", first.Subject.Filename, first.Subject.Start.Line, first.Subject.Start.Column, s)
	}
	if first.Detail != "" {
		s += ": " + first.Detail
	}
	s = redactAll(s, sortedRedactions(r.redact))
	if n > 1 {
		s += fmt.Sprintf(" (and %d more errors)", n-1)
	}
	return s
}

// MaxPrinted is how many diagnostics WriteDiagnostics prints; the rest are
// counted in one closing line (a spec with 100,000 errors must not print
// for minutes).
const MaxPrinted = 20

// WriteDiagnostics is the free-standing form of Result.WriteDiagnostics.
// Errors come first, then warnings, each in source order.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File, redact []string) {
	redact = sortedRedactions(redact)
	ordered := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			ordered = append(ordered, d)
		}
	}
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			ordered = append(ordered, d)
		}
	}
	for i, d := range ordered {
		if i == MaxPrinted {
			errs, warns := 0, 0
			for _, rest := range ordered[i:] {
				if rest.Severity == hcl.DiagError {
					errs++
				} else {
					warns++
				}
			}
			fmt.Fprintf(w, "\n... and %d more error(s) and %d more warning(s) not shown (%d in all); fix the ones above and run again.\n", errs, warns, len(ordered))
			return
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		sev := "Error"
		if d.Severity == hcl.DiagWarning {
			sev = "Warning"
		}
		fmt.Fprintf(w, "%s: %s\n", sev, redactAll(d.Summary, redact))
		if d.Subject != nil && d.Subject.Filename != "" {
			rg := d.Subject
			ctx := ""
			if f := files[rg.Filename]; f != nil {
				if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
					if c := cs.ContextString(rg.Start.Byte); c != "" {
						ctx = ", in " + c
					}
				}
			}
			fmt.Fprintf(w, "\n  on %s:%d:%d%s:\n", rg.Filename, rg.Start.Line, rg.Start.Column, ctx)
			if f := files[rg.Filename]; f != nil {
				writeSnippet(w, f.Bytes, rg, redact)
			}
		}
		if d.Detail != "" {
			fmt.Fprintln(w)
			for _, line := range wrap(redactAll(d.Detail, redact), 100) {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
	}
}

func writeSnippet(w io.Writer, src []byte, rg *hcl.Range, redact []string) {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if line < rg.Start.Line {
			continue
		}
		if line > rg.Start.Line {
			break
		}
		text := sc.Text()
		shown := maskSecretAttrs(redactAll(text, redact))
		fmt.Fprintf(w, "  %4d | %s\n", line, shown)
		if shown != text {
			return // columns no longer match; the line itself says enough
		}
		startCol := rg.Start.Column
		endCol := rg.End.Column
		if rg.End.Line != rg.Start.Line {
			endCol = len(text) + 1
		}
		if endCol <= startCol {
			endCol = startCol + 1
		}
		prefix := []rune(text)
		pad := &strings.Builder{}
		for i := 0; i < startCol-1 && i < len(prefix); i++ {
			if prefix[i] == '\t' {
				pad.WriteByte('\t')
			} else {
				pad.WriteByte(' ')
			}
		}
		fmt.Fprintf(w, "       | %s%s\n", pad.String(), strings.Repeat("^", endCol-startCol))
	}
}

// attrValue matches "name = value" (or "name": value in JSON) in a source
// line: the name and the value (quoted, a list, or a bare token).
var attrValue = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`((?:^|[\s{,"])"?([A-Za-z_][A-Za-z0-9_-]*)"?\s*[=:]\s*)("(?:[^"\\]|\\.)*"?|\[[^\]]*\]?|[^\s,}]+)`)
}) // compiled on first use, not at every start

// secretNames are attributes that hold secrets; a name within two edits of
// one (a misspelling such as app_secrt) is treated the same, so a typo
// never prints the value it was meant to protect.
var secretNames = []string{"app_secret", "secret", "key", "password", "token"}

func secretName(name string) bool {
	name = strings.ToLower(name)
	for _, s := range secretNames {
		if name == s || strings.Contains(name, "secret") || strings.Contains(name, "passw") {
			return true
		}
		if len(name) >= 5 && suggest.Distance(name, s) <= 2 {
			return true
		}
	}
	return false
}

// maskSecretAttrs masks the value of every secret-like attribute in a
// source line, even when it never evaluated (a syntax error, a wrong type,
// escapes in the literal, a misspelled name).
func maskSecretAttrs(line string) string {
	return attrValue().ReplaceAllStringFunc(line, func(m string) string {
		sub := attrValue().FindStringSubmatch(m)
		if !secretName(sub[2]) {
			return m
		}
		val := sub[3]
		if strings.HasPrefix(val, "env(") || strings.HasPrefix(val, "file(") || strings.HasPrefix(val, "trimspace(") ||
			strings.HasPrefix(val, "var.") || strings.HasPrefix(val, "local.") {
			return m // a reference, not a value
		}
		return sub[1] + "(sensitive)"
	})
}

func sortedRedactions(in []string) []string {
	out := make([]string, 0, 2*len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
			// Details quote values with %q: hide the escaped form too.
			if q := strconv.Quote(s); q[1:len(q)-1] != s {
				out = append(out, q[1:len(q)-1])
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// redactAll hides secret values in source text. Values of 8 characters or
// more are replaced wherever they appear; shorter ones only as a whole quoted
// string, so a weak secret like "short" does not mangle ordinary words.
// Summaries and details are written by jitsi-agent and never carry values.
func redactAll(s string, redact []string) string {
	for _, v := range redact {
		switch {
		case v == "":
		case len(v) >= 8 && strings.Contains(s, v):
			s = strings.ReplaceAll(s, v, "(sensitive)")
		case len(v) < 8 && strings.Contains(s, `"`+v+`"`):
			s = strings.ReplaceAll(s, `"`+v+`"`, `"(sensitive)"`)
		}
		// Multi-line values (files) may show up one line at a time.
		if strings.Contains(v, "\n") {
			for _, part := range strings.Split(v, "\n") {
				if len(part) >= 8 && strings.Contains(s, part) {
					s = strings.ReplaceAll(s, part, "(sensitive)")
				}
			}
		}
	}
	return s
}

func wrap(s string, width int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			out = append(out, "")
			continue
		}
		line := words[0]
		for _, wd := range words[1:] {
			if len(line)+1+len(wd) > width {
				out = append(out, line)
				line = wd
				continue
			}
			line += " " + wd
		}
		out = append(out, line)
	}
	return out
}

// JSONReport is validate -json's output, in the shape of Terraform's
// `validate -json` (format_version "1.0").
type JSONReport struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []JSONDiagnostic `json:"diagnostics"`
}

// JSONDiagnostic is one diagnostic; Range is absent for problems that have
// no place in a file (an unreadable spec, a render error).
type JSONDiagnostic struct {
	Severity string       `json:"severity"` // "error" or "warning"
	Summary  string       `json:"summary"`
	Detail   string       `json:"detail,omitempty"`
	Range    *JSONRange   `json:"range,omitempty"`
	Snippet  *JSONSnippet `json:"snippet,omitempty"`
}

// JSONRange is a source range; lines and columns count from 1, bytes from 0.
type JSONRange struct {
	Filename string  `json:"filename"`
	Start    JSONPos `json:"start"`
	End      JSONPos `json:"end"`
}

// JSONPos is one position in a file.
type JSONPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// JSONSnippet is the source line of the range's start (secrets masked) and
// the enclosing block.
type JSONSnippet struct {
	Context   string `json:"context,omitempty"`
	Code      string `json:"code"`
	StartLine int    `json:"start_line"`
}

// JSON builds the JSON report of diagnostics; secret values are redacted
// from details and snippets as in WriteDiagnostics.
func JSON(diags hcl.Diagnostics, files map[string]*hcl.File, redact []string) JSONReport {
	redact = sortedRedactions(redact)
	rep := JSONReport{FormatVersion: "1.0", Diagnostics: []JSONDiagnostic{}}
	for _, d := range diags {
		jd := JSONDiagnostic{Severity: "error", Summary: redactAll(d.Summary, redact), Detail: redactAll(d.Detail, redact)}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
			rep.WarningCount++
		} else {
			rep.ErrorCount++
		}
		if rg := d.Subject; rg != nil && rg.Filename != "" {
			jd.Range = &JSONRange{Filename: rg.Filename,
				Start: JSONPos{Line: rg.Start.Line, Column: rg.Start.Column, Byte: rg.Start.Byte},
				End:   JSONPos{Line: rg.End.Line, Column: rg.End.Column, Byte: rg.End.Byte}}
			if f := files[rg.Filename]; f != nil {
				lines := bytes.Split(f.Bytes, []byte("\n"))
				if rg.Start.Line >= 1 && rg.Start.Line <= len(lines) {
					sn := &JSONSnippet{StartLine: rg.Start.Line,
						Code: maskSecretAttrs(redactAll(strings.TrimRight(string(lines[rg.Start.Line-1]), "\r"), redact))}
					if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
						sn.Context = cs.ContextString(rg.Start.Byte)
					}
					jd.Snippet = sn
				}
			}
		}
		rep.Diagnostics = append(rep.Diagnostics, jd)
	}
	rep.Valid = rep.ErrorCount == 0
	return rep
}

// JSON is the free function for a load result.
func (r *Result) JSON() JSONReport { return JSON(r.Diags, r.Files, r.redact) }
