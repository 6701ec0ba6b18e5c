package adopt

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A HOCON reader for what jicofo.conf and jvb.conf contain, with Typesafe
// Config's semantics (tests compare it with the real library): objects with
// or without root braces, dotted path keys, '=' ':' or nothing before '{',
// quoted, triple-quoted and unquoted strings, numbers, booleans, null,
// arrays, value concatenation on one line ("90 seconds"), duplicate objects
// merged and later scalars winning, '#' and '//' comments, commas or
// newlines between fields. Substitutions (${...}), include and += are
// refused with the line: jitsi-agent cannot reproduce what they resolve to.

// hoconValue is a parsed value: string, float64/int64 (number), bool, nil,
// []any, or *hoconObject.
type hoconObject struct {
	keys   []string
	fields map[string]*hoconField
}

type hoconField struct {
	value any
	line  int
}

func newHoconObject() *hoconObject { return &hoconObject{fields: map[string]*hoconField{}} }

// hoconLeaf is one flattened setting: path "a.b.c" and its value.
type hoconLeaf struct {
	Path  string
	Value any // string, int64, float64, bool, nil, []any (elements may be map[string]any)
	Line  int
}

// hoconDoc is a parsed HOCON file, flattened.
type hoconDoc struct {
	File   string
	root   *hoconObject
	Leaves map[string]hoconLeaf
	Order  []string
}

func (d *hoconDoc) get(path string) (any, bool) {
	l, ok := d.Leaves[path]
	return l.Value, ok
}

func (d *hoconDoc) str(path string) (string, bool) {
	v, ok := d.get(path)
	if !ok {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case int64:
		return strconv.FormatInt(t, 10), true
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

func (d *hoconDoc) integer(path string) (int, bool) {
	v, ok := d.get(path)
	if !ok {
		return 0, false
	}
	switch t := v.(type) {
	case int64:
		return int(t), true
	case float64:
		return int(t), t == float64(int(t))
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(t))
		return n, err == nil
	}
	return 0, false
}

func (d *hoconDoc) boolean(path string) (bool, bool) {
	v, ok := d.get(path)
	if !ok {
		return false, false
	}
	switch t := v.(type) {
	case bool:
		return t, true
	case string: // Typesafe Config accepts these for getBoolean
		switch t {
		case "true", "yes", "on":
			return true, true
		case "false", "no", "off":
			return false, true
		}
	}
	return false, false
}

func (d *hoconDoc) strList(path string) ([]string, bool) {
	v, ok := d.get(path)
	if !ok {
		return nil, false
	}
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

type hoconParser struct {
	file  string
	src   string
	pos   int
	line  int
	depth int
}

type hoconError struct {
	file string
	line int
	msg  string
}

func (e *hoconError) Error() string { return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg) }

func parseHOCON(file string, src []byte) (doc *hoconDoc, err error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	if !utf8.Valid(src) {
		return nil, fmt.Errorf("%s: not UTF-8 text", file)
	}
	p := &hoconParser{file: file, src: string(src), line: 1}
	defer func() {
		if r := recover(); r != nil {
			he, ok := r.(*hoconError)
			if !ok {
				panic(r)
			}
			doc, err = nil, he
		}
	}()
	root := newHoconObject()
	p.skipSpace(true)
	if p.peek() == '{' {
		p.pos++
		p.parseFields(root, '}')
		p.expect('}')
	} else {
		p.parseFields(root, 0)
	}
	p.skipSpace(true)
	if p.pos < len(p.src) {
		p.fail("unexpected %q after the end of the document", p.src[p.pos:p.pos+1])
	}
	doc = &hoconDoc{File: file, root: root, Leaves: map[string]hoconLeaf{}}
	flatten(doc, "", root)
	return doc, nil
}

func flatten(doc *hoconDoc, prefix string, o *hoconObject) {
	for _, k := range o.keys {
		f := o.fields[k]
		path := hoconPathJoin(prefix, k)
		if sub, ok := f.value.(*hoconObject); ok {
			if len(sub.keys) == 0 {
				doc.Leaves[path] = hoconLeaf{Path: path, Value: map[string]any{}, Line: f.line}
				doc.Order = append(doc.Order, path)
				continue
			}
			flatten(doc, path, sub)
			continue
		}
		doc.Leaves[path] = hoconLeaf{Path: path, Value: plain(f.value), Line: f.line}
		doc.Order = append(doc.Order, path)
	}
}

// hoconPathJoin joins path elements, quoting elements that need it.
func hoconPathJoin(prefix, k string) string {
	// "//" starts a comment in an unquoted key, as '#' does.
	if k == "" || strings.Contains(k, "//") || strings.IndexFunc(k, func(r rune) bool { return r < 0x20 || r > 0x7e || !isHoconUnquoted(byte(r)) || r == '.' }) >= 0 {
		k = hoconQuote(k)
	}
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// plain turns nested objects into map[string]any.
func plain(v any) any {
	switch t := v.(type) {
	case *hoconObject:
		m := make(map[string]any, len(t.keys))
		for _, k := range t.keys {
			m[k] = plain(t.fields[k].value)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

func (p *hoconParser) fail(format string, args ...any) {
	panic(&hoconError{file: p.file, line: p.line, msg: fmt.Sprintf(format, args...)})
}

func (p *hoconParser) peek() byte {
	if p.pos >= len(p.src) {
		return 0
	}
	return p.src[p.pos]
}

func (p *hoconParser) expect(c byte) {
	p.skipSpace(true)
	if p.peek() != c {
		if p.pos >= len(p.src) {
			p.fail("expected %q, found the end of the file", c)
		}
		p.fail("expected %q, found %q", c, p.src[p.pos:p.pos+1])
	}
	p.pos++
}

// skipSpace skips white space and comments; newlines too when nl is true.
func (p *hoconParser) skipSpace(nl bool) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			if !nl {
				return
			}
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '#' || c == '/' && strings.HasPrefix(p.src[p.pos:], "//"):
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case c == 0xEF && strings.HasPrefix(p.src[p.pos:], "\uFEFF"):
			p.pos += 3
		default:
			return
		}
	}
}

const hoconForbidden = "$\"{}[]:=,+#`^?!@*&\\"

func isHoconUnquoted(c byte) bool {
	return c != ' ' && c != '\t' && c != '\n' && c != '\r' && !strings.ContainsRune(hoconForbidden, rune(c))
}

func (p *hoconParser) parseFields(o *hoconObject, end byte) {
	p.depth++
	if p.depth > 64 {
		p.fail("objects nested deeper than 64")
	}
	defer func() { p.depth-- }()
	for {
		p.skipSpace(true)
		c := p.peek()
		if c == 0 {
			if end != 0 {
				p.fail("unclosed object: expected %q before the end of the file", end)
			}
			return
		}
		if c == end {
			return
		}
		if c == ',' {
			p.fail("unexpected ','")
		}
		if strings.HasPrefix(p.src[p.pos:], "include") && p.pos+7 < len(p.src) && (p.src[p.pos+7] == ' ' || p.src[p.pos+7] == '\t') {
			p.fail("include is not supported: inline the included file's settings")
		}
		line := p.line
		path := p.parseKey()
		p.skipSpace(false)
		var val any
		switch p.peek() {
		case '{':
			p.pos++
			sub := newHoconObject()
			p.parseFields(sub, '}')
			p.expect('}')
			val = sub
		case '=', ':':
			p.pos++
			p.skipSpace(true)
			val = p.parseValue()
		case '+':
			p.fail("'+=' is not supported: write the whole list")
		default:
			p.fail("expected '=', ':' or '{' after key %s", strings.Join(path, "."))
		}
		p.set(o, path, val, line)
		// Field separator: newline or comma.
		p.skipSpace(false)
		switch p.peek() {
		case ',':
			p.pos++
		case '\n', 0, end:
		case '#', '/':
		default:
			if p.peek() == '}' && end == 0 {
				p.fail("unexpected '}'")
			}
			p.fail("expected a new line or ',' after the value of %s", strings.Join(path, "."))
		}
	}
}

// set merges val at path into o (objects merge, anything else replaces).
func (p *hoconParser) set(o *hoconObject, path []string, val any, line int) {
	for i, k := range path {
		last := i == len(path)-1
		f, ok := o.fields[k]
		if last {
			if ok {
				if oldObj, ok1 := f.value.(*hoconObject); ok1 {
					if newObj, ok2 := val.(*hoconObject); ok2 {
						for _, nk := range newObj.keys {
							nf := newObj.fields[nk]
							p.set(oldObj, []string{nk}, nf.value, nf.line)
						}
						return
					}
				}
				f.value, f.line = val, line
				return
			}
			o.keys = append(o.keys, k)
			o.fields[k] = &hoconField{value: val, line: line}
			return
		}
		if ok {
			if sub, ok := f.value.(*hoconObject); ok {
				o = sub
				continue
			}
			// a scalar is replaced by an object
			sub := newHoconObject()
			f.value, f.line = sub, line
			o = sub
			continue
		}
		sub := newHoconObject()
		o.keys = append(o.keys, k)
		o.fields[k] = &hoconField{value: sub, line: line}
		o = sub
	}
}

// parseKey reads a path expression: elements separated by '.', each
// quoted or unquoted; white space inside an unquoted key is kept.
func (p *hoconParser) parseKey() []string {
	var path []string
	var cur strings.Builder
	any := false
	for {
		c := p.peek()
		switch {
		case c == '"':
			cur.WriteString(p.parseQuoted())
			any = true
		case c == '.':
			if !any {
				p.fail("empty path element in key")
			}
			path = append(path, cur.String())
			cur.Reset()
			any = false
			p.pos++
		case c == ' ' || c == '\t':
			// white space is part of the key only between key parts
			save := p.pos
			for p.peek() == ' ' || p.peek() == '\t' {
				p.pos++
			}
			n := p.peek()
			if n == '=' || n == ':' || n == '{' || n == '+' || n == '\n' || n == 0 {
				p.pos = save
				goto done
			}
			cur.WriteString(p.src[save:p.pos])
		case c == '/' && strings.HasPrefix(p.src[p.pos:], "//"):
			goto done
		case c != 0 && isHoconUnquoted(c):
			cur.WriteByte(c)
			any = true
			p.pos++
		default:
			goto done
		}
	}
done:
	if !any {
		if p.pos < len(p.src) {
			p.fail("expected a key, found %q", p.src[p.pos:p.pos+1])
		}
		p.fail("expected a key")
	}
	return append(path, strings.TrimRight(cur.String(), " \t"))
}

func (p *hoconParser) parseQuoted() string {
	if strings.HasPrefix(p.src[p.pos:], `"""`) {
		end := strings.Index(p.src[p.pos+3:], `"""`)
		if end < 0 {
			p.fail("unclosed triple-quoted string")
		}
		s := p.src[p.pos+3 : p.pos+3+end]
		// extra quotes at the end belong to the string
		j := p.pos + 3 + end + 3
		for j < len(p.src) && p.src[j] == '"' {
			s += `"`
			j++
		}
		p.line += strings.Count(s, "\n")
		p.pos = j
		return s
	}
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			p.fail("unclosed string")
		}
		c := p.src[p.pos]
		if c == '"' {
			p.pos++
			return b.String()
		}
		if c == '\\' {
			p.pos++
			if p.pos >= len(p.src) {
				p.fail("unclosed string")
			}
			e := p.src[p.pos]
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if p.pos+5 > len(p.src) {
					p.fail("bad \\u escape")
				}
				n, err := strconv.ParseUint(p.src[p.pos+1:p.pos+5], 16, 32)
				if err != nil {
					p.fail("bad \\u escape")
				}
				b.WriteRune(rune(n))
				p.pos += 4
			default:
				p.fail("bad escape \\%c in string", e)
			}
			p.pos++
			continue
		}
		b.WriteByte(c)
		p.pos++
	}
}

// parseValue reads one value; simple values on the same line concatenate.
func (p *hoconParser) parseValue() any {
	switch p.peek() {
	case '{':
		p.pos++
		sub := newHoconObject()
		p.parseFields(sub, '}')
		p.expect('}')
		return sub
	case '[':
		p.pos++
		return p.parseArray()
	case 0:
		p.fail("expected a value, found the end of the file")
	}
	// Simple values and their concatenation.
	type piece struct {
		v      any
		text   string
		quoted bool
	}
	var pieces []piece
	var gaps []string
	for {
		c := p.peek()
		switch {
		case c == '"':
			s := p.parseQuoted()
			pieces = append(pieces, piece{v: s, text: s, quoted: true})
		case c == '$':
			p.fail("substitutions (${...}) are not supported: write the value")
		case c == '/' && strings.HasPrefix(p.src[p.pos:], "//"):
			goto end
		case c != 0 && isHoconUnquoted(c):
			start := p.pos
			for p.pos < len(p.src) && isHoconUnquoted(p.src[p.pos]) && !strings.HasPrefix(p.src[p.pos:], "//") {
				p.pos++
			}
			t := p.src[start:p.pos]
			pieces = append(pieces, piece{v: unquotedValue(t), text: t})
		default:
			goto end
		}
		// white space between pieces on the same line
		ws := p.pos
		for p.peek() == ' ' || p.peek() == '\t' {
			p.pos++
		}
		n := p.peek()
		if n == '"' || n != 0 && isHoconUnquoted(n) && !(n == '/' && strings.HasPrefix(p.src[p.pos:], "//")) {
			gaps = append(gaps, p.src[ws:p.pos])
			continue
		}
		p.pos = ws
		goto end
	}
end:
	if len(pieces) == 0 {
		if p.pos < len(p.src) {
			p.fail("expected a value, found %q", p.src[p.pos:p.pos+1])
		}
		p.fail("expected a value")
	}
	if len(pieces) == 1 {
		return pieces[0].v
	}
	var b strings.Builder
	for i, pc := range pieces {
		if i > 0 {
			b.WriteString(gaps[i-1])
		}
		b.WriteString(pc.text)
	}
	return b.String()
}

func unquotedValue(t string) any {
	switch t {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n
	}
	if strings.ContainsAny(t, "0123456789") {
		if f, err := strconv.ParseFloat(t, 64); err == nil && !strings.ContainsAny(t, "xXnN_") {
			return f
		}
	}
	return t
}

func (p *hoconParser) parseArray() []any {
	out := []any{}
	for {
		p.skipSpace(true)
		if p.peek() == ']' {
			p.pos++
			return out
		}
		if p.peek() == 0 {
			p.fail("unclosed array")
		}
		out = append(out, p.parseValue())
		p.skipSpace(true)
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
		default:
			if p.peek() == 0 {
				p.fail("unclosed array")
			}
			// newline-separated elements: skipSpace consumed the newline
		}
	}
}

// hoconLiteral writes a value as HOCON (canonical: sorted object keys).
func hoconLiteral(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		// Plain decimal digits (an exponent's '+' in 1e+19 is not read back
		// as a number), with a fraction so that a whole float is read back
		// as a float, not an integer.
		f := strconv.FormatFloat(t, 'f', -1, 64)
		if !strings.ContainsAny(f, ".IN") {
			f += ".0"
		}
		return f
	case string:
		return hoconQuote(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = hoconLiteral(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = hoconQuote(k) + " = " + hoconLiteral(t[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// hoconQuote writes s as a HOCON (JSON) string literal.
func hoconQuote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return `""`
	}
	return strings.TrimSuffix(b.String(), "\n")
}
