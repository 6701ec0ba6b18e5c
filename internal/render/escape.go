package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Escaping helpers, available in every template (built-in and user) as
// functions. Each turns a value from the spec into a literal of the target
// language that cannot break out of its string, whatever the value holds
// (quotes, newlines, "]]", "${", "<!--#", "$"). Where a language has no way
// to escape a character (nginx variables, line-based files), the helper
// fails the render instead of emitting something unsafe; its error never
// contains the value, which may be a secret.

// funcMap is shared by built-in and user templates.
var funcMap = template.FuncMap{
	"lua": luaString,
	// extramodules D SECTION: the spec's extra.prosody_modules for a
	// Prosody section, appended to its modules_enabled.
	"extramodules": func(d *spec.Deployment, section string) []string { return d.Extra.ProsodyModules[section] },
	"lualist":      luaList,
	"hocon":        hoconString,
	"hoconlist":    hoconList,
	"js":           jsLiteral,
	"json":         jsLiteral,
	"nginx":        nginxString,
	"nginxraw":     nginxInner,
	"line":         lineValue,
	"shell":        shellQuote,
	"dart":         dartString,
	"join":         strings.Join,
	// stepFunc is inserted by instrument() at the start of every range
	// body of a user template; it is not meant to be called by hand.
	stepFunc: step,
}

// luaString returns s as a double-quoted Lua string literal. Control bytes,
// quotes and backslashes are escaped with decimal escapes, which every Lua
// version understands; bytes >= 0x80 (UTF-8) pass through unchanged.
func luaString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			// Three digits, so a following digit cannot extend the escape.
			fmt.Fprintf(&b, `\%03d`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// luaList returns a Lua table constructor of string literals: { "a", "b" }.
func luaList(items []string) string {
	if len(items) == 0 {
		return "{ }"
	}
	parts := make([]string, len(items))
	for i, s := range items {
		parts[i] = luaString(s)
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// hoconString returns s as a HOCON quoted string. HOCON quoted strings are
// JSON strings, and substitutions ("${...}") are never expanded inside them.
func hoconString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("hocon: value is not valid UTF-8")
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// hoconList returns a HOCON array of quoted strings: [ "a", "b" ].
func hoconList(items []string) (string, error) {
	if len(items) == 0 {
		return "[]", nil
	}
	parts := make([]string, len(items))
	for i, s := range items {
		q, err := hoconString(s)
		if err != nil {
			return "", err
		}
		parts[i] = q
	}
	return "[ " + strings.Join(parts, ", ") + " ]", nil
}

// jsLiteral returns v as a JSON literal, which is also a JavaScript
// expression. encoding/json escapes <, > and & (so "<!--#" cannot reach
// nginx's SSI parser in config.js) and U+2028/U+2029.
func jsLiteral(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("js: cannot encode a %T", v)
	}
	return string(b), nil
}

// nginxInner escapes s for use inside an nginx double-quoted string (the
// template writes the quotes, so literal text such as "/$1/$2" can follow).
// nginx expands variables inside quotes and has no escape for "$", so a
// value with "$" is refused, as are control characters.
func nginxInner(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return "", errors.New("nginx: value contains a control character")
		}
		if c == '$' {
			return "", errors.New(`nginx: value contains "$", which nginx would expand as a variable`)
		}
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return r.Replace(s), nil
}

// nginxString returns s as an nginx double-quoted string.
func nginxString(s string) (string, error) {
	in, err := nginxInner(s)
	if err != nil {
		return "", err
	}
	return `"` + in + `"`, nil
}

// lineValue returns s unchanged when it is safe as the value of a line-based
// "key=value" file (turnserver.conf, .env): no control characters (so no
// newline that would start a new directive) and no leading or trailing
// space. Anything else fails the render.
func lineValue(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int:
		return strconv.Itoa(x), nil
	default:
		return "", fmt.Errorf("line: unsupported type %T", v)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "", errors.New("line: value contains a control character (newline?)")
		}
	}
	if strings.TrimSpace(s) != s {
		return "", errors.New("line: value has leading or trailing space")
	}
	return s, nil
}

// shellQuote returns s as a POSIX shell single-quoted word (also valid in
// systemd EnvironmentFile and docker/dotenv files that honour quotes).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dartString returns s as a Dart double-quoted string literal; "$" is
// escaped because Dart interpolates it.
func dartString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '$':
			b.WriteString(`\$`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u{%x}`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// RedactionForms returns v and every form the template functions can write
// it in (the inside of a Lua, HOCON, JSON/JS, shell, Dart or nginx string),
// so that a secret is recognised, and hidden, however a file quotes it.
func RedactionForms(v string) []string {
	forms := []string{v}
	add := func(quoted string, err error, open, close string) {
		if err != nil || len(quoted) < len(open)+len(close) {
			return
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(quoted, open), close)
		if inner != "" && inner != v {
			for _, f := range forms {
				if f == inner {
					return
				}
			}
			forms = append(forms, inner)
		}
	}
	add(luaString(v), nil, `"`, `"`)
	h, err := hoconString(v)
	add(h, err, `"`, `"`)
	j, err := jsLiteral(v)
	add(j, err, `"`, `"`)
	add(shellQuote(v), nil, `'`, `'`)
	add(dartString(v), nil, `'`, `'`)
	n, err := nginxString(v)
	add(n, err, `"`, `"`)
	return forms
}

// redactionList expands secret values into every quoted form.
func redactionList(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		out = append(out, RedactionForms(s)...)
	}
	return out
}
