package prosody

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a small scanner for Prosody's Lua configuration: enough to
// read the assignments jitsi-agent renders (strings, booleans, numbers and
// tables of strings) and the VirtualHost/Component section structure. It is
// not a Lua interpreter: expressions, function calls and keyed tables are
// recognised and skipped (their values are reported as LuaOther or as a table
// with Complex set) so one unusual line never hides the rest of the file.

// Kind is the kind of an assigned value.
type Kind int

// Value kinds.
const (
	LuaOther Kind = iota // an expression the scanner does not evaluate
	LuaString
	LuaBool
	LuaNumber
	LuaNil
	LuaTable
)

// Value is a scanned right-hand side.
type Value struct {
	Kind Kind
	Str  string // LuaString; LuaNumber as written
	Bool bool
	// List holds a table's positional string elements.
	List []string
	// Complex is set when a table also holds non-string or keyed entries.
	Complex bool
	// Line is where the assignment starts (1-based).
	Line int
	// Canon is the right-hand side as canonical tokens (strings decoded
	// and re-quoted, comments and layout dropped): two values are the
	// same setting exactly when their Canon is equal.
	Canon string
}

// Section is a VirtualHost or Component block.
type Section struct {
	Kind    string // "VirtualHost" or "Component"
	Host    string
	Type    string // component type ("muc", ...); "" for VirtualHost
	Line    int
	Options map[string]Value
}

// Config is a scanned Prosody config file.
type Config struct {
	Global   map[string]Value
	Sections []*Section
}

// Section returns the last section for host (nil if none).
func (p *Config) Section(host string) *Section {
	for i := len(p.Sections) - 1; i >= 0; i-- {
		if p.Sections[i].Host == host {
			return p.Sections[i]
		}
	}
	return nil
}

// Lookup returns key as Prosody resolves it for host: the host's own section
// first, then the global section.
func (p *Config) Lookup(host, key string) (Value, bool) {
	if s := p.Section(host); s != nil {
		if v, ok := s.Options[key]; ok {
			return v, true
		}
	}
	v, ok := p.Global[key]
	return v, ok
}

type luaTokKind int

const (
	tEOF luaTokKind = iota
	tName
	tString
	tNumber
	tPunct
)

type luaTok struct {
	kind luaTokKind
	s    string
	line int
}

type luaLexer struct {
	src  string
	pos  int
	line int
}

// longBracket reports the level of a long bracket "[==[" at pos (-1 if none).
func (l *luaLexer) longBracket(pos int) int {
	if pos >= len(l.src) || l.src[pos] != '[' {
		return -1
	}
	j := pos + 1
	for j < len(l.src) && l.src[j] == '=' {
		j++
	}
	if j < len(l.src) && l.src[j] == '[' {
		return j - pos - 1
	}
	return -1
}

// readLong reads a long string/comment body starting at its opening bracket.
func (l *luaLexer) readLong(level int) (string, error) {
	start := l.pos + level + 2
	closer := "]" + strings.Repeat("=", level) + "]"
	end := strings.Index(l.src[start:], closer)
	if end < 0 {
		return "", fmt.Errorf("line %d: unfinished long string or comment", l.line)
	}
	body := l.src[start : start+end]
	l.line += strings.Count(body, "\n")
	l.pos = start + end + len(closer)
	// A newline right after the opening bracket is not part of the string.
	body = strings.TrimPrefix(strings.TrimPrefix(body, "\r"), "\n")
	return body, nil
}

func (l *luaLexer) next() (luaTok, error) {
	for l.pos < len(l.src) {
		ch := l.src[l.pos]
		switch {
		case ch == '\n':
			l.line++
			l.pos++
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v':
			l.pos++
		case ch == '-' && strings.HasPrefix(l.src[l.pos:], "--"):
			l.pos += 2
			if lv := l.longBracket(l.pos); lv >= 0 {
				if _, err := l.readLong(lv); err != nil {
					return luaTok{}, err
				}
				continue
			}
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case l.pos == 0 && strings.HasPrefix(l.src, "#"): // shebang line
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return l.token()
		}
	}
	return luaTok{kind: tEOF, line: l.line}, nil
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (l *luaLexer) token() (luaTok, error) {
	line := l.line
	ch := l.src[l.pos]
	switch {
	case isNameStart(ch):
		start := l.pos
		for l.pos < len(l.src) && (isNameStart(l.src[l.pos]) || isDigit(l.src[l.pos])) {
			l.pos++
		}
		return luaTok{tName, l.src[start:l.pos], line}, nil
	case isDigit(ch) || (ch == '.' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1])):
		start := l.pos
		for l.pos < len(l.src) {
			c := l.src[l.pos]
			if isDigit(c) || isNameStart(c) || c == '.' {
				l.pos++
				continue
			}
			if (c == '+' || c == '-') && strings.ContainsRune("eEpP", rune(l.src[l.pos-1])) {
				l.pos++
				continue
			}
			break
		}
		return luaTok{tNumber, l.src[start:l.pos], line}, nil
	case ch == '"' || ch == '\'':
		s, err := l.quoted(ch)
		return luaTok{tString, s, line}, err
	case ch == '[':
		if lv := l.longBracket(l.pos); lv >= 0 {
			s, err := l.readLong(lv)
			return luaTok{tString, s, line}, err
		}
	}
	for _, p := range []string{"...", "..", "==", "~=", "<=", ">=", "::", "//", "<<", ">>"} {
		if strings.HasPrefix(l.src[l.pos:], p) {
			l.pos += len(p)
			return luaTok{tPunct, p, line}, nil
		}
	}
	l.pos++
	return luaTok{tPunct, string(ch), line}, nil
}

// quoted reads a short string and decodes Lua's escapes.
func (l *luaLexer) quoted(q byte) (string, error) {
	startLine := l.line
	l.pos++
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == q:
			l.pos++
			return b.String(), nil
		case c == '\n':
			return "", fmt.Errorf("line %d: unfinished string", startLine)
		case c == '\\' && l.pos+1 < len(l.src):
			l.pos++
			e := l.src[l.pos]
			l.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '\n':
				l.line++
				b.WriteByte('\n')
			case 'x':
				if l.pos+2 <= len(l.src) {
					if v, err := strconv.ParseUint(l.src[l.pos:l.pos+2], 16, 8); err == nil {
						b.WriteByte(byte(v))
						l.pos += 2
						continue
					}
				}
				return "", fmt.Errorf("line %d: bad \\x escape", l.line)
			case 'z':
				for l.pos < len(l.src) && strings.IndexByte(" \t\r\n\f\v", l.src[l.pos]) >= 0 {
					if l.src[l.pos] == '\n' {
						l.line++
					}
					l.pos++
				}
			case 'u':
				end := strings.IndexByte(l.src[l.pos:], '}')
				if !strings.HasPrefix(l.src[l.pos:], "{") || end < 0 {
					return "", fmt.Errorf("line %d: bad \\u escape", l.line)
				}
				v, err := strconv.ParseUint(l.src[l.pos+1:l.pos+end], 16, 32)
				if err != nil {
					return "", fmt.Errorf("line %d: bad \\u escape", l.line)
				}
				b.WriteString(string(utf8.AppendRune(nil, rune(v))))
				l.pos += end + 1
			default:
				if isDigit(e) {
					j := l.pos - 1
					k := j
					for k < len(l.src) && k < j+3 && isDigit(l.src[k]) {
						k++
					}
					v, _ := strconv.Atoi(l.src[j:k])
					if v > 255 {
						return "", fmt.Errorf("line %d: decimal escape too large", l.line)
					}
					b.WriteByte(byte(v))
					l.pos = k
					continue
				}
				b.WriteByte(e) // \\ \" \' and anything else literal
			}
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return "", fmt.Errorf("line %d: unfinished string", startLine)
}

// luaParser walks the token stream.
type luaParser struct {
	toks []luaTok
	i    int
}

func (p *luaParser) peek(n int) luaTok {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1] // EOF
}

func (p *luaParser) take() luaTok {
	t := p.peek(0)
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *luaParser) isPunct(n int, s string) bool {
	t := p.peek(n)
	return t.kind == tPunct && t.s == s
}

// ParseConfig scans a Prosody config file. Errors are lexical only
// (an unfinished string or long comment); other syntax is skipped.
func ParseConfig(src []byte) (*Config, error) {
	lx := &luaLexer{src: string(src), line: 1}
	var toks []luaTok
	for {
		t, err := lx.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.kind == tEOF {
			break
		}
	}
	p := &luaParser{toks: toks}
	cfg := &Config{Global: map[string]Value{}}
	cur := cfg.Global
	for p.peek(0).kind != tEOF {
		t := p.peek(0)
		if t.kind != tName {
			p.take()
			continue
		}
		if (t.s == "VirtualHost" || t.s == "Component") && !p.isPunct(1, "=") {
			p.take()
			sec := &Section{Kind: t.s, Line: t.line, Options: map[string]Value{}}
			paren := p.isPunct(0, "(")
			if paren {
				p.take()
			}
			if p.peek(0).kind == tString {
				sec.Host = p.take().s
			}
			if paren && p.isPunct(0, ",") {
				p.take()
				if p.peek(0).kind == tString {
					sec.Type = p.take().s
				}
			}
			if paren && p.isPunct(0, ")") {
				p.take()
			}
			if t.s == "Component" && sec.Type == "" && p.peek(0).kind == tString {
				sec.Type = p.take().s
			}
			cfg.Sections = append(cfg.Sections, sec)
			cur = sec.Options
			continue
		}
		if p.isPunct(1, "=") && !p.isPunct(1, "==") {
			p.take()
			p.take()
			start := p.i
			v := p.value()
			v.Line = t.line
			v.Canon = canon(p.toks[start:p.i])
			cur[t.s] = v
			continue
		}
		p.take() // a call (Include "x"), keyword or anything else
	}
	return cfg, nil
}

// value parses one right-hand side, including trailing binary operators.
func (p *luaParser) value() Value {
	v := p.primary()
	for {
		t := p.peek(0)
		if t.kind == tPunct && isBinaryOp(t.s) {
			p.take()
			p.primary()
			v = Value{Kind: LuaOther}
			continue
		}
		if t.kind == tName && (t.s == "and" || t.s == "or") {
			p.take()
			p.primary()
			v = Value{Kind: LuaOther}
			continue
		}
		return v
	}
}

func isBinaryOp(s string) bool {
	switch s {
	case "..", "+", "-", "*", "/", "//", "%", "^", "==", "~=", "<", ">", "<=", ">=", "&", "|", "~", "<<", ">>":
		return true
	}
	return false
}

func (p *luaParser) primary() Value {
	t := p.take()
	switch t.kind {
	case tString:
		return Value{Kind: LuaString, Str: t.s}
	case tNumber:
		return Value{Kind: LuaNumber, Str: t.s}
	case tName:
		switch t.s {
		case "true", "false":
			return Value{Kind: LuaBool, Bool: t.s == "true"}
		case "nil":
			return Value{Kind: LuaNil}
		case "not":
			p.primary()
			return Value{Kind: LuaOther}
		case "function":
			p.skipBlock()
			return Value{Kind: LuaOther}
		}
		// a variable, field access or call: name(.name|[x]|(args)|"s"|{t})*
		for {
			switch {
			case p.isPunct(0, ".") || p.isPunct(0, ":"):
				p.take()
				p.take()
			case p.isPunct(0, "("):
				p.skipBalanced("(", ")")
			case p.isPunct(0, "["):
				p.skipBalanced("[", "]")
			case p.isPunct(0, "{"):
				p.table()
			case p.peek(0).kind == tString && p.peek(0).line == t.line:
				p.take()
			default:
				return Value{Kind: LuaOther}
			}
		}
	case tPunct:
		switch t.s {
		case "{":
			p.i-- // table() consumes the brace
			return p.table()
		case "(":
			p.i--
			p.skipBalanced("(", ")")
		case "-":
			if n := p.peek(0); n.kind == tNumber {
				p.take()
				return Value{Kind: LuaNumber, Str: "-" + n.s}
			}
			p.primary()
		case "#", "~":
			p.primary()
		}
	}
	return Value{Kind: LuaOther}
}

// table parses "{ ... }" collecting positional string elements.
func (p *luaParser) table() Value {
	v := Value{Kind: LuaTable}
	p.take() // {
	for {
		t := p.peek(0)
		switch {
		case t.kind == tEOF:
			return v
		case p.isPunct(0, "}"):
			p.take()
			return v
		case p.isPunct(0, ",") || p.isPunct(0, ";"):
			p.take()
			continue
		case t.kind == tName && p.isPunct(1, "=") && !p.isPunct(1, "=="):
			p.take()
			p.take()
			p.value()
			v.Complex = true
		case p.isPunct(0, "["):
			p.skipBalanced("[", "]")
			if p.isPunct(0, "=") {
				p.take()
			}
			p.value()
			v.Complex = true
		default:
			e := p.value()
			if e.Kind == LuaString {
				v.List = append(v.List, e.Str)
			} else {
				v.Complex = true
			}
		}
		// Anything left before the next separator is unexpected: skip it.
		for !p.isPunct(0, ",") && !p.isPunct(0, ";") && !p.isPunct(0, "}") && p.peek(0).kind != tEOF {
			if p.isPunct(0, "{") {
				p.table()
			} else {
				p.take()
			}
			v.Complex = true
		}
	}
}

func (p *luaParser) skipBalanced(open, close string) {
	depth := 0
	for p.peek(0).kind != tEOF {
		t := p.take()
		if t.kind == tPunct && t.s == open {
			depth++
		} else if t.kind == tPunct && t.s == close {
			depth--
			if depth == 0 {
				return
			}
		}
	}
}

// skipBlock skips a function body up to its matching "end". Blocks open
// with function, if and do (while/for bodies); repeat closes with until.
func (p *luaParser) skipBlock() {
	depth := 1
	for p.peek(0).kind != tEOF {
		t := p.take()
		if t.kind != tName {
			continue
		}
		switch t.s {
		case "function", "do", "if", "repeat":
			depth++
		case "end", "until":
			depth--
			if depth == 0 {
				return
			}
		}
	}
}

// canon joins tokens into a comparable form. A trailing "," or ";" inside
// a table is dropped so {"a";} and {"a"} compare equal.
func canon(toks []luaTok) string {
	var b strings.Builder
	for i, t := range toks {
		if t.kind == tPunct && (t.s == "," || t.s == ";") && i+1 < len(toks) && toks[i+1].kind == tPunct && toks[i+1].s == "}" {
			continue
		}
		if t.kind == tPunct && t.s == ";" {
			t.s = ","
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if t.kind == tString {
			b.WriteString(strconv.Quote(t.s))
		} else {
			b.WriteString(t.s)
		}
	}
	return b.String()
}
