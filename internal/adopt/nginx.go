package adopt

import (
	"fmt"
	"strings"
)

// nginx's configuration grammar: directives are words separated by white
// space and ended by ';', or followed by a '{ ... }' block; words may be
// quoted ("..." or '...', with backslash escapes); '#' starts a comment at
// the beginning of a word. Each directive keeps its line and its source
// span, so unknown blocks can be kept verbatim.

type ngxDirective struct {
	Name  string
	Args  []string
	Line  int
	Block []*ngxDirective // nil for simple directives
	Start int             // byte offsets of the directive's source (incl. its block)
	End   int
}

type ngxFile struct {
	File string
	Src  string
	Top  []*ngxDirective
}

func parseNginx(file string, src []byte) (*ngxFile, error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	p := &ngxParser{file: file, src: string(src), line: 1}
	top, err := p.block(0)
	if err != nil {
		return nil, err
	}
	return &ngxFile{File: file, Src: p.src, Top: top}, nil
}

type ngxParser struct {
	file string
	src  string
	pos  int
	line int
	// tokStart and tokLine are where the last token word returned begins
	// (its opening quote for a quoted one): a token's unescaped text is not
	// its length in the source.
	tokStart, tokLine int
}

func (p *ngxParser) errf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.line, fmt.Sprintf(format, args...))
}

// word returns the next token: a word, or one of ";" "{" "}"; "" at EOF.
func (p *ngxParser) word() (tok string, quoted bool, err error) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			goto start
		}
	}
	return "", false, nil
start:
	p.tokStart, p.tokLine = p.pos, p.line
	c := p.src[p.pos]
	if c == ';' || c == '{' || c == '}' {
		p.pos++
		return string(c), false, nil
	}
	if c == '"' || c == '\'' {
		q := c
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.src) {
				return "", false, p.errf("unclosed quoted string")
			}
			d := p.src[p.pos]
			if d == '\\' && p.pos+1 < len(p.src) {
				n := p.src[p.pos+1]
				if n == q || n == '\\' {
					b.WriteByte(n)
				} else {
					b.WriteByte('\\')
					b.WriteByte(n)
				}
				p.pos += 2
				continue
			}
			if d == q {
				p.pos++
				return b.String(), true, nil
			}
			if d == '\n' {
				p.line++
			}
			b.WriteByte(d)
			p.pos++
		}
	}
	start := p.pos
	for p.pos < len(p.src) {
		d := p.src[p.pos]
		// As ngx_conf_read_token: a word ends at white space, ';' or '{'
		// (except "${" of a variable); '}' inside a word is part of it.
		if d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == ';' {
			break
		}
		if d == '{' && !(p.pos > start && p.src[p.pos-1] == '$') {
			break
		}
		if d == '\\' && p.pos+1 < len(p.src) {
			p.pos++
		}
		p.pos++
	}
	return p.src[start:p.pos], false, nil
}

func (p *ngxParser) block(depth int) ([]*ngxDirective, error) {
	if depth > 32 {
		return nil, p.errf("blocks nested deeper than 32")
	}
	var out []*ngxDirective
	for {
		tok, quoted, err := p.word()
		if err != nil {
			return nil, err
		}
		if tok == "" && !quoted {
			if depth > 0 {
				return nil, p.errf("unexpected end of file, expecting \"}\"")
			}
			return out, nil
		}
		if tok == "}" && !quoted {
			if depth == 0 {
				return nil, p.errf("unexpected \"}\"")
			}
			return out, nil
		}
		if (tok == ";" || tok == "{") && !quoted {
			return nil, p.errf("unexpected %q", tok)
		}
		d := &ngxDirective{Name: tok, Line: p.tokLine, Start: p.tokStart}
		for {
			w, q, err := p.word()
			if err != nil {
				return nil, err
			}
			if w == "" && !q {
				return nil, p.errf("unexpected end of file, expecting \";\" or \"}\" after %q", d.Name)
			}
			if !q && w == ";" {
				break
			}
			if !q && w == "{" {
				d.Block, err = p.block(depth + 1)
				if err != nil {
					return nil, err
				}
				if d.Block == nil {
					d.Block = []*ngxDirective{}
				}
				break
			}
			if !q && w == "}" {
				return nil, p.errf("unexpected \"}\" in %q", d.Name)
			}
			d.Args = append(d.Args, w)
		}
		d.End = p.pos
		out = append(out, d)
	}
}

// text returns the directive's source, starting at its line's indentation.
func (f *ngxFile) text(d *ngxDirective) string {
	start := d.Start
	for start > 0 && (f.Src[start-1] == ' ' || f.Src[start-1] == '\t') {
		start--
	}
	return f.Src[start:d.End]
}

func (d *ngxDirective) arg(i int) string {
	if i < len(d.Args) {
		return d.Args[i]
	}
	return ""
}

func (d *ngxDirective) find(name string) []*ngxDirective {
	var out []*ngxDirective
	for _, c := range d.Block {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func (d *ngxDirective) first(name string) *ngxDirective {
	for _, c := range d.Block {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (d *ngxDirective) signature() string {
	return d.Name + " " + strings.Join(d.Args, " ")
}

// servers returns the top-level server blocks.
func (f *ngxFile) servers() []*ngxDirective {
	var out []*ngxDirective
	for _, d := range f.Top {
		if d.Name == "server" && d.Block != nil {
			out = append(out, d)
		}
	}
	return out
}

// tlsServer is the server block listening with ssl.
func (f *ngxFile) tlsServer() *ngxDirective {
	for _, s := range f.servers() {
		for _, l := range s.find("listen") {
			for _, a := range l.Args[1:] {
				if a == "ssl" {
					return s
				}
			}
		}
	}
	return nil
}

// plainServer is the first server block without ssl.
func (f *ngxFile) plainServer() *ngxDirective {
	tls := f.tlsServer()
	for _, s := range f.servers() {
		if s != tls {
			return s
		}
	}
	return nil
}

func (d *ngxDirective) location(args ...string) *ngxDirective {
	want := strings.Join(args, " ")
	for _, c := range d.find("location") {
		if strings.Join(c.Args, " ") == want {
			return c
		}
	}
	return nil
}

// listenPort is the port of a listen directive's address (80, [::]:80,
// 0.0.0.0:443).
func listenPort(d *ngxDirective) string {
	a := d.arg(0)
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.HasSuffix(a, "]") {
		return a[i+1:]
	}
	return a
}
