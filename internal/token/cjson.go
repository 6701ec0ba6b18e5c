package token

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The payload and header are decoded exactly as Prosody's lua-cjson 2.1.0
// (cjson.safe with its defaults) decodes them, into the Lua values Jitsi's
// token code then inspects. lua-cjson is more lenient than JSON in some ways
// (hex numbers, Infinity, NaN, leading zeros, "+1", raw control bytes and
// invalid UTF-8 in strings, anything after a NUL byte) and stricter in
// others (lone surrogate escapes, more than 1000 nested containers).

// ltype is a Lua value's type as Jitsi's code sees a decoded claim.
type ltype uint8

const (
	lNil   ltype = iota // absent
	lNull               // cjson.null, a light userdata
	lBool               // true or false
	lNum                // every JSON number is a Lua float
	lStr                // a Lua string (any bytes)
	lTable              // an object or an array
)

// lvalue is one decoded Lua value.
type lvalue struct {
	t ltype
	b bool
	n float64
	s string
	o *ltable
}

// ltable is an object's members in order (a repeated key's last value
// wins, as with lua_rawset) or an array's elements.
type ltable struct {
	keys  []string
	vals  []lvalue
	array bool
}

// get indexes a value with a string key the way Lua does for the values
// cjson produces: a table yields its member (nil for arrays); a string
// yields nil (string keys Jitsi uses are not string-library functions);
// nil is nil. ok is false when Lua raises "attempt to index a X value".
func (v lvalue) get(key string) (lvalue, bool) {
	switch v.t {
	case lTable:
		if v.o.array {
			return lvalue{}, true
		}
		for i := len(v.o.keys) - 1; i >= 0; i-- {
			if v.o.keys[i] == key {
				return v.o.vals[i], true
			}
		}
		return lvalue{}, true
	case lStr:
		return lvalue{}, true
	}
	return lvalue{}, false
}

// field is get for code that knows v is an object (nil when it is not).
func (v lvalue) field(key string) lvalue {
	f, _ := v.get(key)
	return f
}

// truthy is Lua truthiness: everything but nil and false.
func (v lvalue) truthy() bool { return v.t != lNil && !(v.t == lBool && !v.b) }

// typeName is Lua's type() name as error messages print it ("a userdata value").
func (v lvalue) typeName() string {
	switch v.t {
	case lNull:
		return "userdata"
	case lBool:
		return "boolean"
	case lNum:
		return "number"
	case lStr:
		return "string"
	case lTable:
		return "table"
	}
	return "nil"
}

// argTypeName is luaL_typeerror's name ("light userdata" for cjson.null).
func (v lvalue) argTypeName() string {
	if v.t == lNull {
		return "light userdata"
	}
	if v.t == lNil {
		return "no value"
	}
	return v.typeName()
}

// isStr reports whether v is the string s (Lua ==: no coercion).
func (v lvalue) isStr(s string) bool { return v.t == lStr && v.s == s }

// tostring is the value concatenated into a string, for strings and
// numbers (the two types Lua's .. accepts).
func (v lvalue) tostring() (string, bool) {
	switch v.t {
	case lStr:
		return v.s, true
	case lNum:
		return luaNumber(v.n), true
	}
	return "", false
}

// goValue converts to encoding/json-like Go values for printing.
func (v lvalue) goValue() any {
	switch v.t {
	case lBool:
		return v.b
	case lNum:
		return v.n
	case lStr:
		return v.s
	case lTable:
		if v.o.array {
			out := make([]any, len(v.o.vals))
			for i, e := range v.o.vals {
				out[i] = e.goValue()
			}
			return out
		}
		out := make(map[string]any, len(v.o.keys))
		for i, k := range v.o.keys {
			out[k] = v.o.vals[i].goValue()
		}
		return out
	}
	return nil
}

// describe is how a fix names a claim's value.
func (v lvalue) describe() string {
	switch v.t {
	case lNil:
		return "nothing"
	case lNull:
		return "null"
	case lStr:
		return strconv.Quote(v.s)
	case lNum:
		return luaNumber(v.n) + " (a number)"
	case lBool:
		return strconv.FormatBool(v.b) + " (a boolean)"
	case lTable:
		if v.o.array {
			return "an array"
		}
	}
	return "an object"
}

// cjsonMaxDepth is lua-cjson's decode_max_depth default.
const cjsonMaxDepth = 1000

type cjsonParser struct {
	b     []byte
	i     int
	depth int
	err   string
}

func (p *cjsonParser) at(i int) byte {
	if i < len(p.b) {
		return p.b[i]
	}
	return 0 // Lua strings end in NUL; lua-cjson reads it as the end
}

// cjsonDecode decodes b as cjson.safe.decode does; err is lua-cjson's
// complaint (without its "at character N" position).
func cjsonDecode(b []byte) (lvalue, string) {
	if len(b) >= 2 && (b[0] == 0 || b[1] == 0) {
		return lvalue{}, "JSON parser does not support UTF-16 or UTF-32"
	}
	p := &cjsonParser{b: b}
	v, ok := p.value()
	if !ok {
		return lvalue{}, p.err
	}
	p.ws()
	if p.at(p.i) != 0 {
		return lvalue{}, "Expected the end but found invalid token"
	}
	return v, ""
}

func (p *cjsonParser) ws() {
	for {
		switch p.at(p.i) {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *cjsonParser) fail(msg string) (lvalue, bool) {
	if p.err == "" {
		p.err = msg
	}
	return lvalue{}, false
}

func (p *cjsonParser) value() (lvalue, bool) {
	p.ws()
	c := p.at(p.i)
	switch {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, ok := p.str()
		if !ok {
			return lvalue{}, false
		}
		return lvalue{t: lStr, s: s}, true
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	case p.has("true"):
		p.i += 4
		return lvalue{t: lBool, b: true}, true
	case p.has("false"):
		p.i += 5
		return lvalue{t: lBool}, true
	case p.has("null"):
		p.i += 4
		return lvalue{t: lNull}, true
	case c == '+' || c == 'i' || c == 'I' || c == 'n' || c == 'N':
		if p.invalidNumber() {
			return p.number()
		}
	}
	return p.fail("Expected value but found invalid token")
}

func (p *cjsonParser) has(word string) bool {
	return strings.HasPrefix(string(p.b[p.i:min(len(p.b), p.i+len(word))]), word)
}

// invalidNumber is json_is_invalid_number for the characters that reach it
// ('+', and i/I/n/N): lua-cjson then lets strtod try.
func (p *cjsonParser) invalidNumber() bool {
	c := p.at(p.i)
	if c == '+' {
		return true
	}
	rest := strings.ToLower(string(p.b[p.i:min(len(p.b), p.i+3)]))
	return rest == "inf" || rest == "nan"
}

func (p *cjsonParser) descend() bool {
	p.depth++
	return p.depth <= cjsonMaxDepth
}

func (p *cjsonParser) object() (lvalue, bool) {
	if !p.descend() {
		return p.fail(fmt.Sprintf("Found too many nested data structures (%d)", p.depth))
	}
	p.i++
	t := &ltable{}
	p.ws()
	if p.at(p.i) == '}' {
		p.i++
		p.depth--
		return lvalue{t: lTable, o: t}, true
	}
	for {
		p.ws()
		if p.at(p.i) != '"' {
			return p.fail("Expected object key string but found invalid token")
		}
		k, ok := p.str()
		if !ok {
			return lvalue{}, false
		}
		p.ws()
		if p.at(p.i) != ':' {
			return p.fail("Expected colon but found invalid token")
		}
		p.i++
		v, ok := p.value()
		if !ok {
			return lvalue{}, false
		}
		t.keys = append(t.keys, k)
		t.vals = append(t.vals, v)
		p.ws()
		switch p.at(p.i) {
		case '}':
			p.i++
			p.depth--
			return lvalue{t: lTable, o: t}, true
		case ',':
			p.i++
		default:
			return p.fail("Expected comma or object end but found invalid token")
		}
	}
}

func (p *cjsonParser) array() (lvalue, bool) {
	if !p.descend() {
		return p.fail(fmt.Sprintf("Found too many nested data structures (%d)", p.depth))
	}
	p.i++
	t := &ltable{array: true}
	p.ws()
	if p.at(p.i) == ']' {
		p.i++
		p.depth--
		return lvalue{t: lTable, o: t}, true
	}
	for {
		v, ok := p.value()
		if !ok {
			return lvalue{}, false
		}
		t.vals = append(t.vals, v)
		p.ws()
		switch p.at(p.i) {
		case ']':
			p.i++
			p.depth--
			return lvalue{t: lTable, o: t}, true
		case ',':
			p.i++
		default:
			return p.fail("Expected comma or array end but found invalid token")
		}
	}
}

func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	v := 0
	for _, c := range b[:4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			d = c | 0x20 - 'a' + 10
		default:
			return -1
		}
		v = v<<4 | int(d)
	}
	return v
}

// str is json_next_string_token: raw bytes (control characters and invalid
// UTF-8 included) up to the closing quote; NUL ends the input.
func (p *cjsonParser) str() (string, bool) {
	p.i++
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != '"' && p.b[p.i] != '\\' && p.b[p.i] != 0 {
		p.i++
	}
	if p.at(p.i) == '"' {
		s := string(p.b[start:p.i])
		p.i++
		return s, true
	}
	buf := []byte(string(p.b[start:p.i]))
	for {
		c := p.at(p.i)
		switch c {
		case '"':
			p.i++
			return string(buf), true
		case 0:
			p.fail("Expected value but found unexpected end of string")
			return "", false
		case '\\':
			e := p.at(p.i + 1)
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				cp := hex4(p.b[min(len(p.b), p.i+2):])
				n := 6
				if cp < 0 {
					p.fail("Expected value but found invalid unicode escape code")
					return "", false
				}
				if cp&0xF800 == 0xD800 {
					lo := -1
					if cp&0x400 == 0 && p.at(p.i+6) == '\\' && p.at(p.i+7) == 'u' {
						lo = hex4(p.b[min(len(p.b), p.i+8):])
					}
					if lo < 0 || lo&0xFC00 != 0xDC00 {
						p.fail("Expected value but found invalid unicode escape code")
						return "", false
					}
					cp = ((cp&0x3FF)<<10 | lo&0x3FF) + 0x10000
					n = 12
				}
				buf = utf8.AppendRune(buf, rune(cp))
				p.i += n
				continue
			default:
				p.fail("Expected value but found invalid escape code")
				return "", false
			}
			p.i += 2
		default:
			buf = append(buf, c)
			p.i++
		}
	}
}

// number is json_next_number_token: glibc strtod in the C locale on the
// text from here, taking its longest valid prefix.
func (p *cjsonParser) number() (lvalue, bool) {
	n, f := strtod(p.b[p.i:])
	if n == 0 {
		return p.fail("Expected value but found invalid number")
	}
	p.i += n
	return lvalue{t: lNum, n: f}, true
}

func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isHexDigit(c byte) bool { return isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f') }

// strtod returns how many bytes of b glibc's strtod would consume (0: no
// conversion) and the value. b never starts with white space here.
func strtod(b []byte) (int, float64) {
	at := func(i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	i := 0
	neg := false
	if c := at(0); c == '+' || c == '-' {
		neg = c == '-'
		i++
	}
	sign := func(f float64) float64 {
		if neg {
			return -f
		}
		return f
	}
	lower := func(j, n int) string { return strings.ToLower(string(b[min(len(b), j):min(len(b), j+n)])) }
	switch {
	case lower(i, 3) == "inf":
		n := i + 3
		if lower(i, 8) == "infinity" {
			n = i + 8
		}
		return n, sign(math.Inf(1))
	case lower(i, 3) == "nan":
		n := i + 3
		if at(n) == '(' {
			j := n + 1
			for c := at(j); isDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'z') || c == '_'; c = at(j) {
				j++
			}
			if at(j) == ')' {
				n = j + 1
			}
		}
		return n, math.NaN()
	case at(i) == '0' && at(i+1)|0x20 == 'x':
		j := i + 2
		digits := 0
		start := j
		for isHexDigit(at(j)) {
			j++
			digits++
		}
		mant := string(b[start:j])
		if at(j) == '.' {
			k := j + 1
			for isHexDigit(at(k)) {
				k++
				digits++
			}
			if digits > 0 {
				mant = string(b[start:k])
				j = k
			}
		}
		if digits == 0 { // "0x" alone: strtod takes the "0"
			return i + 1, sign(0)
		}
		exp := "p0"
		if at(j)|0x20 == 'p' {
			k := j + 1
			if at(k) == '+' || at(k) == '-' {
				k++
			}
			if isDigit(at(k)) {
				for isDigit(at(k)) {
					k++
				}
				exp = string(b[j:k])
				j = k
			}
		}
		f, _ := strconv.ParseFloat("0x"+mant+exp, 64) // out of range is +-Inf or 0, as from strtod
		return j, sign(f)
	}
	j := i
	digits := 0
	for isDigit(at(j)) {
		j++
		digits++
	}
	if at(j) == '.' {
		k := j + 1
		for isDigit(at(k)) {
			k++
			digits++
		}
		if digits > 0 {
			j = k
		}
	}
	if digits == 0 {
		return 0, 0
	}
	if at(j)|0x20 == 'e' {
		k := j + 1
		if at(k) == '+' || at(k) == '-' {
			k++
		}
		if isDigit(at(k)) {
			for isDigit(at(k)) {
				k++
			}
			j = k
		}
	}
	f, _ := strconv.ParseFloat(string(b[i:j]), 64)
	return j, sign(f)
}
