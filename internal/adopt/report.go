package adopt

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// FindingKind says what import did with a setting.
type FindingKind string

// Kinds of findings.
const (
	// KindKept: a setting the spec has no attribute for, kept verbatim in
	// the spec's extra block (so apply writes it back).
	KindKept FindingKind = "kept"
	// KindChanged: apply will write a different value (Reason says why).
	KindChanged FindingKind = "changed"
	// KindAdded: apply will add a setting the host does not have.
	KindAdded FindingKind = "added"
	// KindRemoved: apply will drop a setting the host has.
	KindRemoved FindingKind = "removed"
	// KindIgnored: a setting or file import did not follow (Include,
	// files jitsi-agent does not manage).
	KindIgnored FindingKind = "ignored"
)

// Finding is one line of the import report.
type Finding struct {
	File    string
	Line    int // 0 when the setting is not on the host (added)
	Kind    FindingKind
	Setting string
	Old     string // the host's value ("" when added); secrets masked
	New     string // what apply writes ("" when removed)
	Reason  string
}

func (f Finding) where() string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return f.File
}

// sortFindings orders by file, line, setting.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Setting < b.Setting
	})
}

// WriteReport prints the report: per file, every finding.
func (r *Result) WriteReport(w io.Writer) {
	fmt.Fprintf(w, "Imported %s from %d files.\n", r.Domain, len(r.Sources))
	if r.AppSecretFile != "" {
		fmt.Fprintf(w, "  app secret -> %s (0600), referenced as file() in the spec\n", r.AppSecretFile)
	}
	for _, s := range r.SecretsWritten {
		fmt.Fprintf(w, "  %s -> %s (0600)\n", s.From, s.To)
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "Every setting was understood; plan shows no change to any setting.")
		return
	}
	counts := map[FindingKind]int{}
	for _, f := range r.Findings {
		counts[f.Kind]++
	}
	fmt.Fprintf(w, "%d kept verbatim in extra, %d changed, %d added, %d removed, %d ignored:\n",
		counts[KindKept], counts[KindChanged], counts[KindAdded], counts[KindRemoved], counts[KindIgnored])
	file := ""
	for _, f := range r.Findings {
		if f.File != file {
			file = f.File
			fmt.Fprintf(w, "\n%s\n", file)
		}
		loc := "    "
		if f.Line > 0 {
			loc = fmt.Sprintf("%4d", f.Line)
		}
		var val string
		switch f.Kind {
		case KindChanged:
			val = fmt.Sprintf(": %s -> %s", short(f.Old), short(f.New))
		case KindAdded:
			val = " = " + short(f.New)
		case KindRemoved, KindKept:
			if f.Old != "" {
				val = " = " + short(f.Old)
			}
		}
		fmt.Fprintf(w, "  %s %-8s %s%s", loc, f.Kind, f.Setting, val)
		if f.Reason != "" {
			fmt.Fprintf(w, " (%s)", f.Reason)
		}
		fmt.Fprintln(w)
	}
}

func short(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}
