// Package luapattern matches Lua 5.4 patterns exactly as string.match does
// (a port of lstrlib.c's matcher): character classes in the C locale, sets,
// captures and position captures, back-references, %b, %f, the four
// quantifiers, anchors, and the same lazily raised errors with Lua's words.
//
// Jitsi's token code treats a room claim as a Lua pattern when the token
// says context.room.regex = true; this package lets the token verifier
// judge such claims as Prosody does. It is not Go's regexp: "a-b" means
// "as few 'a' as possible, then 'b'", and "." matches any byte.
package luapattern

import (
	"errors"
	"fmt"
)

const (
	maxCaptures  = 32  // LUA_MAXCAPTURES
	maxCalls     = 200 // MAXCCALLS: the matcher's recursion budget
	capUnfinshed = -1
	capPosition  = -2
	esc          = '%'
)

// Error is a pattern error, worded as Lua raises it.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Result is string.match's first return value.
type Result struct {
	// Matched is false when string.match returns nil.
	Matched bool
	// Position is set when the first capture is a position capture "()":
	// string.match then returns an integer (1-based), not a string.
	Position int
	IsPos    bool
	// Value is the first capture, or the whole match without captures.
	Value string
}

// String is the value as Lua's tostring would print it.
func (r Result) String() string {
	if r.IsPos {
		return fmt.Sprint(r.Position)
	}
	return r.Value
}

type capture struct {
	init int
	len  int
}

type state struct {
	src     string
	pat     string
	depth   int
	level   int
	capture [maxCaptures]capture
}

type matchError struct{ err *Error }

func (m *state) fail(format string, args ...any) {
	panic(matchError{&Error{Msg: fmt.Sprintf(format, args...)}})
}

// p returns the pattern byte at i, or 0 past the end (Lua strings are
// NUL-terminated and lstrlib reads that terminator).
func (m *state) p(i int) byte {
	if i < len(m.pat) {
		return m.pat[i]
	}
	return 0
}

func (m *state) s(i int) byte {
	if i < len(m.src) {
		return m.src[i]
	}
	return 0
}

// Match is string.match(s, pattern) with init 1. err is a *Error for the
// errors Lua raises (a pcall around string.match sees them).
func Match(s, pattern string) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			me, ok := r.(matchError)
			if !ok {
				panic(r)
			}
			res, err = Result{}, me.err
		}
	}()
	m := &state{src: s, pat: pattern}
	p := 0
	anchor := m.p(0) == '^' && len(pattern) > 0
	if anchor {
		p = 1
	}
	s1 := 0
	for {
		m.level, m.depth = 0, maxCalls
		if e := m.match(s1, p); e >= 0 {
			return m.first(s1, e), nil
		}
		s1++
		if s1 > len(s) || anchor {
			return Result{}, nil
		}
	}
}

// first is push_captures' first value, raising the errors get_onecapture
// raises for any level (all captures are pushed).
func (m *state) first(s, e int) Result {
	if m.level == 0 {
		return Result{Matched: true, Value: m.src[s:e]}
	}
	for i := 0; i < m.level; i++ {
		if m.capture[i].len == capUnfinshed {
			m.fail("unfinished capture")
		}
	}
	c := m.capture[0]
	if c.len == capPosition {
		return Result{Matched: true, IsPos: true, Position: c.init + 1}
	}
	return Result{Matched: true, Value: m.src[c.init : c.init+c.len]}
}

func (m *state) classEnd(p int) int {
	c := m.p(p)
	p++
	switch c {
	case esc:
		if p >= len(m.pat) {
			m.fail("malformed pattern (ends with '%%')")
		}
		return p + 1
	case '[':
		if m.p(p) == '^' {
			p++
		}
		for { // look for a ']'
			if p >= len(m.pat) {
				m.fail("malformed pattern (missing ']')")
			}
			c := m.p(p)
			p++
			if c == esc && p < len(m.pat) {
				p++ // skip escapes (e.g. '%]')
			}
			if m.p(p) == ']' {
				break
			}
		}
		return p + 1
	}
	return p
}

func isalpha(c byte) bool  { return isupper(c) || islower(c) }
func isupper(c byte) bool  { return 'A' <= c && c <= 'Z' }
func islower(c byte) bool  { return 'a' <= c && c <= 'z' }
func isdigit(c byte) bool  { return '0' <= c && c <= '9' }
func iscntrl(c byte) bool  { return c < 0x20 || c == 0x7f }
func isgraph(c byte) bool  { return 0x21 <= c && c <= 0x7e }
func isspace(c byte) bool  { return c == ' ' || ('\t' <= c && c <= '\r') }
func isalnum(c byte) bool  { return isalpha(c) || isdigit(c) }
func ispunct(c byte) bool  { return isgraph(c) && !isalnum(c) }
func isxdigit(c byte) bool { return isdigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f') }

func tolower(c byte) byte {
	if isupper(c) {
		return c + 'a' - 'A'
	}
	return c
}

func matchClass(c, cl byte) bool {
	var res bool
	switch tolower(cl) {
	case 'a':
		res = isalpha(c)
	case 'c':
		res = iscntrl(c)
	case 'd':
		res = isdigit(c)
	case 'g':
		res = isgraph(c)
	case 'l':
		res = islower(c)
	case 'p':
		res = ispunct(c)
	case 's':
		res = isspace(c)
	case 'u':
		res = isupper(c)
	case 'w':
		res = isalnum(c)
	case 'x':
		res = isxdigit(c)
	case 'z': // deprecated, still in Lua 5.4
		res = c == 0
	default:
		return cl == c
	}
	if isupper(cl) {
		res = !res
	}
	return res
}

// matchBracketClass: p is the '[', ec the closing ']'.
func (m *state) matchBracketClass(c byte, p, ec int) bool {
	sig := true
	if m.p(p+1) == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case m.p(p) == esc:
			p++
			if matchClass(c, m.p(p)) {
				return sig
			}
		case m.p(p+1) == '-' && p+2 < ec:
			p += 2
			if m.p(p-2) <= c && c <= m.p(p) {
				return sig
			}
		case m.p(p) == c:
			return sig
		}
	}
	return !sig
}

func (m *state) singleMatch(s, p, ep int) bool {
	if s >= len(m.src) {
		return false
	}
	c := m.src[s]
	switch m.p(p) {
	case '.':
		return true
	case esc:
		return matchClass(c, m.p(p+1))
	case '[':
		return m.matchBracketClass(c, p, ep-1)
	}
	return m.p(p) == c
}

func (m *state) matchBalance(s, p int) int {
	if p >= len(m.pat)-1 {
		m.fail("malformed pattern (missing arguments to '%%b')")
	}
	if m.s(s) != m.p(p) {
		return -1
	}
	b, e := m.p(p), m.p(p+1)
	cont := 1
	for s++; s < len(m.src); s++ {
		switch m.src[s] {
		case e:
			cont--
			if cont == 0 {
				return s + 1
			}
		case b:
			cont++
		}
	}
	return -1
}

func (m *state) maxExpand(s, p, ep int) int {
	i := 0
	for m.singleMatch(s+i, p, ep) {
		i++
	}
	for ; i >= 0; i-- {
		if r := m.match(s+i, ep+1); r >= 0 {
			return r
		}
	}
	return -1
}

func (m *state) minExpand(s, p, ep int) int {
	for {
		if r := m.match(s, ep+1); r >= 0 {
			return r
		}
		if !m.singleMatch(s, p, ep) {
			return -1
		}
		s++
	}
}

func (m *state) startCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		m.fail("too many captures")
	}
	m.capture[m.level] = capture{init: s, len: what}
	m.level++
	r := m.match(s, p)
	if r < 0 {
		m.level--
	}
	return r
}

func (m *state) endCapture(s, p int) int {
	l := -1
	for i := m.level - 1; i >= 0; i-- {
		if m.capture[i].len == capUnfinshed {
			l = i
			break
		}
	}
	if l < 0 {
		m.fail("invalid pattern capture")
	}
	m.capture[l].len = s - m.capture[l].init
	r := m.match(s, p)
	if r < 0 {
		m.capture[l].len = capUnfinshed
	}
	return r
}

func (m *state) matchCapture(s int, l byte) int {
	i := int(l) - '1'
	if i < 0 || i >= m.level || m.capture[i].len == capUnfinshed {
		m.fail("invalid capture index %%%d", i+1)
	}
	n := m.capture[i].len
	if n < 0 { // a position capture's length is huge as size_t
		return -1
	}
	c := m.capture[i]
	if len(m.src)-s >= n && m.src[c.init:c.init+n] == m.src[s:s+n] {
		return s + n
	}
	return -1
}

// match returns the end of the match of pat[p:] at src[s:], or -1.
func (m *state) match(s, p int) int {
	if m.depth == 0 {
		m.fail("pattern too complex")
	}
	m.depth--
	defer func() { m.depth++ }()
	for p != len(m.pat) {
		switch m.p(p) {
		case '(':
			if m.p(p+1) == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinshed)
		case ')':
			return m.endCapture(s, p+1)
		case '$':
			if p+1 == len(m.pat) {
				if s == len(m.src) {
					return s
				}
				return -1
			}
		case esc:
			switch m.p(p + 1) {
			case 'b':
				s = m.matchBalance(s, p+2)
				if s < 0 {
					return -1
				}
				p += 4
				continue
			case 'f':
				p += 2
				if m.p(p) != '[' {
					m.fail("missing '[' after '%%f' in pattern")
				}
				ep := m.classEnd(p)
				var prev byte
				if s > 0 {
					prev = m.src[s-1]
				}
				if !m.matchBracketClass(prev, p, ep-1) && m.matchBracketClass(m.s(s), p, ep-1) {
					p = ep
					continue
				}
				return -1
			case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				s = m.matchCapture(s, m.p(p+1))
				if s < 0 {
					return -1
				}
				p += 2
				continue
			}
		}
		// default: a single-character class plus an optional suffix
		ep := m.classEnd(p)
		if !m.singleMatch(s, p, ep) {
			switch m.p(ep) {
			case '*', '?', '-': // accept empty
				p = ep + 1
				continue
			}
			return -1
		}
		switch m.p(ep) {
		case '?':
			if r := m.match(s+1, ep+1); r >= 0 {
				return r
			}
			p = ep + 1
			continue
		case '+':
			return m.maxExpand(s+1, p, ep)
		case '*':
			return m.maxExpand(s, p, ep)
		case '-':
			return m.minExpand(s, p, ep)
		}
		s++
		p = ep
	}
	return s
}

// Check reports the errors string.match could raise for pattern on some
// subject: a static walk over the whole pattern, for patterns written ahead
// of time (Match raises an error only when matching reaches the bad part).
func Check(pattern string) error {
	m := &state{pat: pattern}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				me, ok := r.(matchError)
				if !ok {
					panic(r)
				}
				err = me.err
			}
		}()
		p := 0
		if m.p(0) == '^' && len(pattern) > 0 {
			p = 1
		}
		var open []int // capture indexes still open
		closed := map[int]bool{}
		n := 0
		for p < len(pattern) {
			switch m.p(p) {
			case '(':
				if n >= maxCaptures {
					m.fail("too many captures")
				}
				if m.p(p+1) == ')' {
					closed[n] = true
					n++
					p += 2
					continue
				}
				open = append(open, n)
				n++
				p++
				continue
			case ')':
				if len(open) == 0 {
					m.fail("invalid pattern capture")
				}
				closed[open[len(open)-1]] = true
				open = open[:len(open)-1]
				p++
				continue
			case '$':
				if p+1 == len(pattern) {
					p++
					continue
				}
			case esc:
				switch c := m.p(p + 1); c {
				case 'b':
					if p+2 >= len(pattern)-1 {
						m.fail("malformed pattern (missing arguments to '%%b')")
					}
					p += 4
					continue
				case 'f':
					p += 2
					if m.p(p) != '[' {
						m.fail("missing '[' after '%%f' in pattern")
					}
					p = m.classEnd(p)
					continue
				case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
					i := int(c) - '1'
					if i < 0 || !closed[i] {
						m.fail("invalid capture index %%%d", i+1)
					}
					p += 2
					continue
				}
			}
			ep := m.classEnd(p)
			switch m.p(ep) {
			case '*', '?', '-', '+':
				ep++
			}
			p = ep
		}
		if len(open) > 0 {
			m.fail("unfinished capture")
		}
	}()
	return err
}

// IsError reports whether err is a pattern error.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
