package adopt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line formats: coturn's turnserver.conf ("name=value", "name value" or a
// bare flag, '#' comments, repeatable options) and Java properties files
// (the legacy sip-communicator.properties; "key=value", "key: value" or
// "key value", '#'/'!' comments, backslash continuations).

type lineEntry struct {
	Key   string
	Value string
	Flag  bool // no value
	Line  int
	Text  string // the source line
}

type lineFile struct {
	File    string
	Entries []lineEntry
	Lines   []string // the raw lines (for markers)
}

func (f *lineFile) all(key string) []lineEntry {
	var out []lineEntry
	for _, e := range f.Entries {
		if e.Key == key {
			out = append(out, e)
		}
	}
	return out
}

func (f *lineFile) last(key string) (lineEntry, bool) {
	var out lineEntry
	ok := false
	for _, e := range f.Entries {
		if e.Key == key {
			out, ok = e, true
		}
	}
	return out, ok
}

func (f *lineFile) value(key string) (string, bool) {
	e, ok := f.last(key)
	return e.Value, ok
}

func parseCoturn(file string, src []byte) (*lineFile, error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	if !utf8.Valid(src) {
		return nil, fmt.Errorf("%s: not UTF-8 text", file)
	}
	f := &lineFile{File: file}
	for i, raw := range strings.Split(string(src), "\n") {
		f.Lines = append(f.Lines, raw)
		s := strings.TrimSpace(raw)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimPrefix(s, "--")
		var key, val string
		flag := false
		if j := strings.IndexAny(s, "= \t"); j >= 0 {
			key, val = s[:j], strings.TrimSpace(strings.TrimLeft(s[j:], "= \t"))
			// coturn strips surrounding double quotes from values
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
		} else {
			key, flag = s, true
		}
		if key == "" {
			return nil, fmt.Errorf("%s:%d: an option without a name", file, i+1)
		}
		f.Entries = append(f.Entries, lineEntry{Key: key, Value: val, Flag: flag, Line: i + 1, Text: raw})
	}
	return f, nil
}

func parseProperties(file string, src []byte) (*lineFile, error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	f := &lineFile{File: file}
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		start := i
		raw := lines[i]
		f.Lines = append(f.Lines, raw)
		s := strings.TrimLeft(raw, " \t\f")
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		for strings.HasSuffix(s, "\\") && !strings.HasSuffix(s, "\\\\") && i+1 < len(lines) {
			i++
			f.Lines = append(f.Lines, lines[i])
			s = s[:len(s)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		s = strings.TrimRight(s, "\r")
		j := strings.IndexAny(s, "=: \t")
		key, val := s, ""
		if j >= 0 {
			key = s[:j]
			rest := strings.TrimLeft(s[j:], " \t")
			if rest != "" && (rest[0] == '=' || rest[0] == ':') {
				rest = rest[1:]
			}
			val = strings.TrimLeft(rest, " \t")
		}
		f.Entries = append(f.Entries, lineEntry{Key: key, Value: unescapeProperty(val), Line: start + 1, Text: strings.Join(lines[start:i+1], "\n")})
	}
	return f, nil
}

func unescapeProperty(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseShellVars reads KEY=VALUE assignments of a sourced shell file such as
// /etc/jitsi/jicofo/config (quotes removed; no expansion).
func parseShellVars(file string, src []byte) (*lineFile, error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	f := &lineFile{File: file}
	for i, raw := range strings.Split(string(src), "\n") {
		s := strings.TrimSpace(raw)
		s = strings.TrimPrefix(s, "export ")
		if s == "" || s[0] == '#' {
			continue
		}
		j := strings.IndexByte(s, '=')
		if j <= 0 {
			continue
		}
		val := s[j+1:]
		if len(val) >= 2 && (val[0] == '"' && val[len(val)-1] == '"' || val[0] == '\'' && val[len(val)-1] == '\'') {
			val = val[1 : len(val)-1]
		}
		f.Entries = append(f.Entries, lineEntry{Key: s[:j], Value: val, Line: i + 1, Text: raw})
	}
	return f, nil
}
