package adopt

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// config.js is evaluated as JavaScript (goja, no I/O, a time limit), as the
// browser would run it, and the resulting `config` object is read. The
// syntax tree gives the line of every literal property and of every
// `config.x.y = ...` assignment, for the report.

type jsConfig struct {
	File  string
	Value map[string]any // JSON-normalised `config`
	Lines map[string]int // "p2p.enabled" -> line
}

const jsTimeout = 2 * time.Second

var ssiEcho = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`<!--#\s*echo\s+var="[^"]*"\s+default="([^"]*)"\s*-->`)
}) // compiled on first use, not at every start

func parseConfigJS(file string, src []byte) (*jsConfig, error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	// nginx serves config.js with SSI: for a request without a tenant every
	// <!--# echo var="..." default="D" --> becomes D.
	text := ssiEcho().ReplaceAllString(string(src), "$1")
	prog, err := parser.ParseFile(nil, file, text, 0)
	if err != nil {
		var el parser.ErrorList
		if errors.As(err, &el) && len(el) > 0 {
			e := el[0]
			return nil, fmt.Errorf("%s:%d:%d: %s", file, e.Position.Line, e.Position.Column, e.Message)
		}
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	cfg := &jsConfig{File: file, Lines: map[string]int{}}
	collectJSLines(prog, cfg.Lines)

	vm := goja.New()
	timer := time.AfterFunc(jsTimeout, func() { vm.Interrupt("timeout") })
	defer timer.Stop()
	p, err := goja.CompileAST(prog, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if _, err := vm.RunProgram(p); err != nil {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("%s: evaluation took longer than %s", file, jsTimeout)
		}
		var ex *goja.Exception
		if errors.As(err, &ex) {
			return nil, fmt.Errorf("%s: %s", file, firstLine(ex.Error()))
		}
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	v := vm.Get("config")
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, fmt.Errorf("%s: defines no `config` object", file)
	}
	js, err := vm.RunString("JSON.stringify(config)")
	if err != nil {
		return nil, fmt.Errorf("%s: config is not plain data: %v", file, err)
	}
	if err := json.Unmarshal([]byte(js.String()), &cfg.Value); err != nil {
		return nil, fmt.Errorf("%s: config is not an object", file)
	}
	return cfg, nil
}

func collectJSLines(prog *ast.Program, lines map[string]int) {
	line := func(idx int) int { return prog.File.Position(idx).Line }
	var walkObj func(prefix string, o *ast.ObjectLiteral)
	walkObj = func(prefix string, o *ast.ObjectLiteral) {
		for _, p := range o.Value {
			var key string
			var val ast.Expression
			var at int
			switch t := p.(type) {
			case *ast.PropertyKeyed:
				switch k := t.Key.(type) {
				case *ast.StringLiteral:
					key = k.Value.String()
				case *ast.Identifier:
					key = k.Name.String()
				default:
					continue
				}
				val, at = t.Value, int(t.Key.Idx0())
			case *ast.PropertyShort:
				key, at = t.Name.Name.String(), int(t.Name.Idx)
			default:
				continue
			}
			path := joinPath(prefix, key)
			lines[path] = line(at)
			if ol, ok := val.(*ast.ObjectLiteral); ok {
				walkObj(path, ol)
			}
		}
	}
	for _, st := range prog.Body {
		switch t := st.(type) {
		case *ast.VariableStatement:
			for _, b := range t.List {
				if id, ok := b.Target.(*ast.Identifier); ok && id.Name == "config" {
					if ol, ok := b.Initializer.(*ast.ObjectLiteral); ok {
						walkObj("", ol)
					}
				}
			}
		case *ast.ExpressionStatement:
			a, ok := t.Expression.(*ast.AssignExpression)
			if !ok {
				continue
			}
			path, ok := dotPath(a.Left)
			if !ok || !strings.HasPrefix(path, "config.") {
				continue
			}
			path = strings.TrimPrefix(path, "config.")
			lines[path] = line(int(a.Left.Idx0()))
			if ol, ok := a.Right.(*ast.ObjectLiteral); ok {
				walkObj(path, ol)
			}
		}
	}
}

func dotPath(e ast.Expression) (string, bool) {
	switch t := e.(type) {
	case *ast.Identifier:
		return t.Name.String(), true
	case *ast.DotExpression:
		l, ok := dotPath(t.Left)
		if !ok {
			return "", false
		}
		return l + "." + t.Identifier.Name.String(), true
	case *ast.BracketExpression:
		l, ok := dotPath(t.Left)
		s, ok2 := t.Member.(*ast.StringLiteral)
		if !ok || !ok2 {
			return "", false
		}
		return l + "." + s.Value.String(), true
	}
	return "", false
}

func joinPath(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// get returns the value at a dotted path.
func (c *jsConfig) get(path string) (any, bool) {
	var cur any = c.Value
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func (c *jsConfig) boolean(path string) (bool, bool) {
	v, ok := c.get(path)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	return b, ok
}

func (c *jsConfig) str(path string) (string, bool) {
	v, ok := c.get(path)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

func (c *jsConfig) number(path string) (float64, bool) {
	v, ok := c.get(path)
	if !ok {
		return 0, false
	}
	n, ok := v.(float64)
	return n, ok
}

// leaves flattens the config into path -> JSON value; arrays are leaves.
func (c *jsConfig) leaves() map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && (len(m) > 0 || prefix == "") {
			for k, e := range m {
				walk(joinPath(prefix, k), e)
			}
			return
		}
		out[prefix] = v
	}
	walk("", c.Value)
	return out
}

// line returns the line that set path (or its nearest parent), 0 if unknown.
func (c *jsConfig) line(path string) int {
	for p := path; p != ""; {
		if l, ok := c.Lines[p]; ok {
			return l
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func jsonLiteral(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
