package adopt

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Prosody's configuration is Lua with a small DSL on top: top-level
// assignments set options of the current section ("*" global until the first
// VirtualHost or Component), VirtualHost "name" and Component "name" "module"
// open a section. The file is evaluated in a sandbox (no I/O libraries, a
// time limit, a bounded stack) with those DSL functions, exactly as
// Prosody's configmanager does, so every value is what Prosody would see.

// luaSection is one section of a Prosody config file.
type luaSection struct {
	Name   string // "*" for the global section
	Kind   string // "global", "host" or "component"
	Module string // component module ("muc", "client_proxy", ...)
	Line   int
	Opts   map[string]luaOpt
	Order  []string // option names in the order first set
}

// luaOpt is one option with the line that (last) set it.
type luaOpt struct {
	Value any // string, float64, bool, []any, map[string]any
	Line  int
}

// prosodyConfig is an evaluated Prosody config file.
type prosodyConfig struct {
	File     string
	Sections []*luaSection // in order of first appearance; [0] is global
	byName   map[string]*luaSection
	// Includes are Include/RunScript calls (not followed; reported).
	Includes []lineNote
}

type lineNote struct {
	Line int
	Text string
}

func (c *prosodyConfig) section(name string) *luaSection { return c.byName[name] }

func (s *luaSection) str(key string) (string, bool) {
	o, ok := s.Opts[key]
	if !ok {
		return "", false
	}
	v, ok := o.Value.(string)
	return v, ok
}

func (s *luaSection) strList(key string) ([]string, bool) {
	o, ok := s.Opts[key]
	if !ok {
		return nil, false
	}
	return toStrings(o.Value)
}

func (s *luaSection) boolean(key string) (bool, bool) {
	o, ok := s.Opts[key]
	if !ok {
		return false, false
	}
	v, ok := o.Value.(bool)
	return v, ok
}

func (s *luaSection) number(key string) (float64, bool) {
	o, ok := s.Opts[key]
	if !ok {
		return 0, false
	}
	v, ok := o.Value.(float64)
	return v, ok
}

// modules returns modules_enabled as a set.
func (s *luaSection) modules() map[string]bool {
	out := map[string]bool{}
	if s == nil {
		return out
	}
	l, _ := s.strList("modules_enabled")
	for _, m := range l {
		out[m] = true
	}
	return out
}

func toStrings(v any) ([]string, bool) {
	switch t := v.(type) {
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case map[string]any:
		if len(t) == 0 {
			return []string{}, true
		}
	case string:
		return []string{t}, true
	}
	return nil, false
}

// Limits for evaluating a config file.
const (
	luaTimeout   = 2 * time.Second
	luaMaxTable  = 100000 // elements in one converted table
	luaMaxDepth  = 32     // nesting of converted tables
	maxInputSize = 1 << 20
)

// parseProsody evaluates src (the contents of file) as Prosody would.
func parseProsody(file string, src []byte) (*prosodyConfig, error) {
	if len(src) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputSize)
	}
	// Syntax first, for a clean file:line error.
	chunk, err := parse.Parse(strings.NewReader(string(src)), file)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimSpace(err.Error()))
	}
	proto, err := lua.Compile(chunk, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}

	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 200, RegistrySize: 1024 * 20, RegistryMaxSize: 1024 * 200})
	defer L.Close()
	// Only the pure libraries: no io, os, package, debug, channel, coroutine.
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, unsafe := range []string{"dofile", "loadfile", "load", "loadstring", "require", "module", "collectgarbage", "print", "_printregs", "newproxy", "setfenv", "getfenv", "rawset", "rawget", "setmetatable", "getmetatable"} {
		L.SetGlobal(unsafe, lua.LNil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), luaTimeout)
	defer cancel()
	L.SetContext(ctx)

	cfg := &prosodyConfig{File: file, byName: map[string]*luaSection{}}
	global := &luaSection{Name: "*", Kind: "global", Line: 1, Opts: map[string]luaOpt{}}
	cfg.Sections = append(cfg.Sections, global)
	cfg.byName["*"] = global
	current := global
	var convErr error

	line := func() int {
		// The caller of the DSL function or of the assignment: level 1 is
		// the Lua function executing.
		if dbg, ok := L.GetStack(1); ok {
			if _, err := L.GetInfo("l", dbg, lua.LNil); err == nil {
				return dbg.CurrentLine
			}
		}
		return 0
	}
	open := func(name, kind string) *luaSection {
		s := cfg.byName[name]
		if s == nil {
			s = &luaSection{Name: name, Kind: kind, Line: line(), Opts: map[string]luaOpt{}}
			cfg.byName[name] = s
			cfg.Sections = append(cfg.Sections, s)
		}
		current = s
		return s
	}
	optionsTable := func(L *lua.LState, s *luaSection, t *lua.LTable) {
		ln := line()
		t.ForEach(func(k, v lua.LValue) {
			ks, ok := k.(lua.LString)
			if !ok {
				return
			}
			gv, err := fromLua(v, 0)
			if err != nil && convErr == nil {
				convErr = fmt.Errorf("%s:%d: option %s: %v", file, ln, string(ks), err)
			}
			s.set(string(ks), gv, ln)
		})
	}

	env := L.NewTable()
	mt := L.NewTable()
	dslHost := L.NewFunction(func(L *lua.LState) int {
		name := strings.ToLower(L.CheckString(1)) // nameprep
		s := open(name, "host")
		if s.Kind == "component" {
			L.RaiseError("Host %q clashes with previously defined Component %q", name, name)
		}
		L.Push(L.NewFunction(func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok {
				optionsTable(L, s, t)
			}
			return 0
		}))
		return 1
	})
	dslComponent := L.NewFunction(func(L *lua.LState) int {
		name := strings.ToLower(L.CheckString(1)) // nameprep
		s := open(name, "component")
		if s.Kind == "host" {
			L.RaiseError("Component %q clashes with previously defined Host %q", name, name)
		}
		if s.Module == "" {
			s.Module = "component"
		}
		L.Push(L.NewFunction(func(L *lua.LState) int {
			switch a := L.Get(1).(type) {
			case lua.LString:
				s.Module = string(a)
				L.Push(L.NewFunction(func(L *lua.LState) int {
					if t, ok := L.Get(1).(*lua.LTable); ok {
						optionsTable(L, s, t)
					}
					return 0
				}))
				return 1
			case *lua.LTable:
				optionsTable(L, s, a)
			}
			return 0
		}))
		return 1
	})
	dslInclude := L.NewFunction(func(L *lua.LState) int {
		cfg.Includes = append(cfg.Includes, lineNote{Line: line(), Text: "Include " + strconv.Quote(L.CheckString(1))})
		return 0
	})
	dslRunScript := L.NewFunction(func(L *lua.LState) int {
		cfg.Includes = append(cfg.Includes, lineNote{Line: line(), Text: "RunScript " + strconv.Quote(L.CheckString(1))})
		return 0
	})
	dslFileContents := L.NewFunction(func(L *lua.LState) int {
		cfg.Includes = append(cfg.Includes, lineNote{Line: line(), Text: "FileContents " + strconv.Quote(L.CheckString(1))})
		L.Push(lua.LString(""))
		return 1
	})
	dsl := map[string]lua.LValue{
		"VirtualHost": dslHost, "Host": dslHost, "host": dslHost,
		"Component": dslComponent, "component": dslComponent,
		"Include": dslInclude, "include": dslInclude, "RunScript": dslRunScript,
		"FileContents": dslFileContents, "FileLine": dslFileContents, "FileLines": dslFileContents,
	}
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		k := L.CheckString(2)
		if f, ok := dsl[k]; ok {
			L.Push(f)
			return 1
		}
		if strings.HasPrefix(k, "ENV_") {
			L.Push(lua.LNil) // the host's environment is not the service's
			return 1
		}
		// As Prosody's configmanager: options are write-only, reads see
		// only Lua's own globals.
		L.Push(L.GetGlobal(k))
		return 1
	}))
	L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
		k := L.CheckString(2)
		v, err := fromLua(L.Get(3), 0)
		if err != nil && convErr == nil {
			convErr = fmt.Errorf("%s:%d: option %s: %v", file, line(), k, err)
		}
		current.set(k, v, line())
		return 0
	}))
	L.SetMetatable(env, mt)

	fn := L.NewFunctionFromProto(proto)
	fn.Env = env
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		msg := err.Error()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: evaluation took longer than %s", file, luaTimeout)
		}
		if ae, ok := err.(*lua.ApiError); ok {
			msg = ae.Object.String()
		}
		return nil, fmt.Errorf("%s", firstLine(msg))
	}
	if convErr != nil {
		return nil, convErr
	}
	return cfg, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (s *luaSection) set(k string, v any, line int) {
	if v == nil { // assigning nil removes the option, as in Prosody
		if _, ok := s.Opts[k]; ok {
			delete(s.Opts, k)
			s.Order = slices.DeleteFunc(s.Order, func(o string) bool { return o == k })
		}
		return
	}
	if _, ok := s.Opts[k]; !ok {
		s.Order = append(s.Order, k)
	}
	s.Opts[k] = luaOpt{Value: v, Line: line}
}

// fromLua converts a Lua value to Go: tables with only 1..n keys become
// []any, others map[string]any (non-string keys are stringified).
func fromLua(v lua.LValue, depth int) (any, error) {
	if depth > luaMaxDepth {
		return nil, fmt.Errorf("tables nested deeper than %d", luaMaxDepth)
	}
	switch t := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(t), nil
	case lua.LNumber:
		return float64(t), nil
	case lua.LString:
		return string(t), nil
	case *lua.LTable:
		n := t.Len()
		count := 0
		var err error
		t.ForEach(func(_, _ lua.LValue) { count++ })
		if count > luaMaxTable {
			return nil, fmt.Errorf("table with more than %d elements", luaMaxTable)
		}
		if count == n && n > 0 {
			out := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				e, e2 := fromLua(t.RawGetInt(i), depth+1)
				if e2 != nil {
					return nil, e2
				}
				out = append(out, e)
			}
			return out, nil
		}
		out := map[string]any{}
		t.ForEach(func(k, val lua.LValue) {
			if err != nil {
				return
			}
			var e any
			e, err = fromLua(val, depth+1)
			out[k.String()] = e
		})
		return out, err
	case *lua.LFunction:
		return nil, fmt.Errorf("a function is not a configuration value")
	default:
		return nil, fmt.Errorf("unsupported value of type %s", v.Type())
	}
}

// luaLiteral writes v as Lua source (canonical: sorted map keys), for extra
// blocks and for comparing values.
func luaLiteral(v any) string {
	var b strings.Builder
	writeLua(&b, v)
	return b.String()
}

func writeLua(b *strings.Builder, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("nil")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			b.WriteString(strconv.FormatInt(int64(t), 10))
		} else {
			b.WriteString(strconv.FormatFloat(t, 'g', -1, 64))
		}
	case string:
		b.WriteString(luaQuote(t))
	case []any:
		b.WriteString("{ ")
		for i, e := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			writeLua(b, e)
		}
		b.WriteString(" }")
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{ ")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			if isLuaName(k) {
				b.WriteString(k)
			} else {
				b.WriteString("[" + luaQuote(k) + "]")
			}
			b.WriteString(" = ")
			writeLua(b, t[k])
		}
		b.WriteString(" }")
	}
}

func isLuaName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	// Bytes: Lua strings are byte strings. Invalid UTF-8 is escaped too,
	// so the text stays valid in the spec's extra block.
	valid := utf8.ValidString(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c == 0x7f || c >= 0x80 && !valid {
				fmt.Fprintf(&b, "\\%03d", c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
