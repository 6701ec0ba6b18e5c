// Package logging sets up logrus for jitsi-agent: human-readable text on a
// terminal, JSON lines with sd-daemon priority prefixes ("<3>{...}") when
// stderr is connected to the journal, and a redaction hook so that secrets
// never reach the output, neither by field name nor by value.
package logging

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

// Placeholder replaces every redacted value.
const Placeholder = "(sensitive)"

// MinSecretLen is the shortest registered value that is redacted inside
// other text. Shorter values would mangle unrelated words; spec validation
// rejects secrets that short anyway. Fields with sensitive names are always
// redacted whatever their length.
const MinSecretLen = 4

// Formats.
const (
	FormatAuto = "auto" // JSON with priority prefixes under journald, text otherwise
	FormatText = "text"
	FormatJSON = "json"
)

// Options configure New.
type Options struct {
	Level  string    // panic|fatal|error|warn|info|debug|trace; "" = info
	Format string    // auto|text|json; "" = auto
	Out    io.Writer // nil = os.Stderr
	// Journal overrides the detection of a journald stderr (nil = detect
	// with journal.StderrIsJournalStream when Out is os.Stderr).
	Journal *bool
}

// New returns a configured logger and the redactor hooked into it. Register
// secret values with Redactor.Add as soon as they are known.
func New(o Options) (*logrus.Logger, *Redactor, error) {
	l := logrus.New()
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	l.SetOutput(out)
	lvl := logrus.InfoLevel
	if o.Level != "" {
		var err error
		if lvl, err = logrus.ParseLevel(o.Level); err != nil {
			return nil, nil, fmt.Errorf("logging: %w (use error, warn, info, debug or trace)", err)
		}
	}
	l.SetLevel(lvl)

	journald := false
	if o.Journal != nil {
		journald = *o.Journal
	} else if f, ok := out.(*os.File); ok && f == os.Stderr {
		journald, _ = journal.StderrIsJournalStream()
	}
	switch o.Format {
	case "", FormatAuto:
		if journald {
			l.SetFormatter(JournalFormatter())
		} else {
			l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
		}
	case FormatText:
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case FormatJSON:
		if journald {
			l.SetFormatter(JournalFormatter())
		} else {
			l.SetFormatter(&logrus.JSONFormatter{FieldMap: logrus.FieldMap{logrus.FieldKeyMsg: "message"}})
		}
	default:
		return nil, nil, fmt.Errorf("logging: unknown format %q (auto, text or json)", o.Format)
	}
	r := NewRedactor()
	l.AddHook(r)
	return l, r, nil
}

// JournalFormatter is JSON without timestamps (journald adds its own), the
// message under "message", and a "<N>" syslog priority prefix per line.
func JournalFormatter() logrus.Formatter {
	return PriorityFormatter{Formatter: &logrus.JSONFormatter{
		DisableTimestamp: true,
		FieldMap:         logrus.FieldMap{logrus.FieldKeyMsg: "message"},
	}}
}

// PriorityFormatter prefixes each line with the sd-daemon priority of its
// level, which journald (SyslogLevelPrefix=yes, the default) turns into the
// entry's PRIORITY.
type PriorityFormatter struct{ logrus.Formatter }

// Format implements logrus.Formatter.
func (f PriorityFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.Formatter.Format(e)
	if err != nil {
		return nil, err
	}
	return append([]byte(fmt.Sprintf("<%d>", Priority(e.Level))), b...), nil
}

// Priority maps a logrus level to a syslog priority.
func Priority(l logrus.Level) int {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return 2 // crit
	case logrus.ErrorLevel:
		return 3 // err
	case logrus.WarnLevel:
		return 4 // warning
	case logrus.InfoLevel:
		return 6 // info
	default:
		return 7 // debug
	}
}

// SensitiveKey reports whether a field name says its value is a secret.
func SensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"secret", "password", "passwd", "token", "key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Redactor replaces registered secret values (and the values of fields with
// sensitive names) with Placeholder. It is a logrus hook and can redact any
// string, e.g. an error shown on the status endpoint. Safe for concurrent use.
type Redactor struct {
	mu       sync.RWMutex
	values   map[string]bool
	replacer *strings.Replacer
}

// NewRedactor returns an empty redactor.
func NewRedactor() *Redactor { return &Redactor{values: map[string]bool{}} }

// Add registers secret values. Values shorter than MinSecretLen are ignored.
// Values are never removed: an old secret must stay hidden too.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) >= MinSecretLen && !r.values[v] {
			r.values[v] = true
			changed = true
		}
	}
	if !changed {
		return
	}
	vs := make([]string, 0, len(r.values))
	for v := range r.values {
		vs = append(vs, v)
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(vs, func(i, j int) bool {
		if len(vs[i]) != len(vs[j]) {
			return len(vs[i]) > len(vs[j])
		}
		return vs[i] < vs[j]
	})
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, Placeholder)
	}
	r.replacer = strings.NewReplacer(pairs...)
}

// Redact returns s with every registered value replaced.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep := r.replacer
	r.mu.RUnlock()
	if rep == nil || s == "" {
		return s
	}
	return rep.Replace(s)
}

// Levels implements logrus.Hook: all levels.
func (r *Redactor) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook. logrus hands hooks a copy of the entry's data,
// so the caller's fields are not modified.
func (r *Redactor) Fire(e *logrus.Entry) error {
	e.Message = r.Redact(e.Message)
	for k, v := range e.Data {
		if SensitiveKey(k) {
			e.Data[k] = Placeholder
			continue
		}
		if nv, changed := r.redactValue(v); changed {
			e.Data[k] = nv
		}
	}
	return nil
}

func (r *Redactor) redactValue(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return v, false
	case string:
		s := r.Redact(x)
		return s, s != x
	case error:
		s := x.Error()
		if rs := r.Redact(s); rs != s {
			return rs, true
		}
		return v, false
	default:
		// Stringers, slices, maps, structs: judge by their printed form,
		// which is what the formatters would print.
		s := fmt.Sprint(v)
		if rs := r.Redact(s); rs != s {
			return rs, true
		}
		return v, false
	}
}

// FormatCLI is the format of the one-shot commands' progress lines
// ("jitsi-agent: msg", "jitsi-agent: warning: msg"), see CLI.
const FormatCLI = "cli"

// CLI returns the logger of a one-shot command (apply, rollback): plain
// "jitsi-agent: " lines on out, warnings and errors labelled, fields as
// sorted key=value pairs, secrets redacted like the daemon's. The daemon and
// the commands log through the same logrus calls; only the formatter differs.
func CLI(out io.Writer) (*logrus.Logger, *Redactor) {
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(logrus.InfoLevel)
	l.SetFormatter(cliFormatter{})
	r := NewRedactor()
	l.AddHook(r)
	return l, r
}

type cliFormatter struct{}

func (cliFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b strings.Builder
	b.WriteString("jitsi-agent: ")
	switch {
	case e.Level <= logrus.ErrorLevel:
		b.WriteString("error: ")
	case e.Level == logrus.WarnLevel:
		b.WriteString("warning: ")
	}
	b.WriteString(e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, e.Data[k])
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// Discard is a logger that drops everything (the default of options that
// take a logger).
func Discard() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.PanicLevel)
	return l
}
