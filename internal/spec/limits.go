package spec

import (
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/jitsi-agent/jitsi-agent/internal/input"
)

// Limits on what a spec may ask of the loader. HCL's parser and evaluator
// recurse once per level of nesting, so an unbounded depth would end in a
// fatal stack overflow (which no recover catches); unbounded values would
// exhaust memory before any check saw them.
const (
	// MaxNesting bounds brackets, parentheses, braces, interpolations and
	// chained operators (a+b+c, a ? b : c ? ...) in one expression.
	MaxNesting = 256
	// MaxValueBytes bounds the size of any evaluated value (a local, an
	// attribute, a function result): the bytes of its strings plus 8 per
	// element.
	MaxValueBytes = 1 << 20
	// MaxListLength bounds range() and similar generated collections.
	MaxListLength = 100_000
)

// checkNesting scans the source of a native-syntax spec (or one template
// string) for nesting deeper than MaxNesting, without recursing. It returns
// one diagnostic at the first place the limit is passed.
func checkNesting(toks hclsyntax.Tokens) hcl.Diagnostics {
	type level struct {
		opener hclsyntax.TokenType
		ops    int // chained operators and conditionals at this level
	}
	stack := []level{{opener: hclsyntax.TokenOBrace}}
	depth := 0 // len(stack)-1 + sum of ops + open template directives
	for i := range toks {
		tk := &toks[i]
		if tk.Type == hclsyntax.TokenIdent && i > 0 && toks[i-1].Type == hclsyntax.TokenTemplateControl {
			// %{ if } / %{ for } open a block that %{ endif } / %{ endfor } closes.
			switch string(tk.Bytes) {
			case "if", "for":
				depth++
			case "endif", "endfor":
				depth--
			}
		}
		switch tk.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			stack = append(stack, level{opener: tk.Type})
			depth++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				depth -= 1 + top.ops
			}
		case hclsyntax.TokenNewline:
			if top := &stack[len(stack)-1]; top.opener == hclsyntax.TokenOBrace {
				depth -= top.ops
				top.ops = 0
			}
		case hclsyntax.TokenQuestion, hclsyntax.TokenBang, hclsyntax.TokenMinus,
			hclsyntax.TokenPlus, hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPercent,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr,
			hclsyntax.TokenDot, hclsyntax.TokenEllipsis:
			stack[len(stack)-1].ops++
			depth++
		default:
			continue
		}
		if depth > MaxNesting {
			rg := tk.Range
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Expression nested too deeply",
				Detail: fmt.Sprintf("Expressions may nest (brackets, parentheses, braces, interpolations, chained operators and attribute accesses) at most %d levels deep. "+
					"Split the expression into locals.", MaxNesting),
				Subject: &rg,
			}}
		}
	}
	return nil
}

// checkNestingHCL checks the nesting of a native-syntax file: a fast scan
// bounds it from above; only when that bound passes MaxNesting (or the scan
// meets a construct it does not model: heredocs, interpolations) does the
// file get lexed for the exact check.
func checkNestingHCL(src []byte, filename string) hcl.Diagnostics {
	if bound, _, ok := quickNesting(src, 0); ok && bound <= MaxNesting {
		return nil
	}
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	return checkNesting(toks)
}

// quickNesting returns an upper bound of what checkNesting measures, for
// sources without heredocs, interpolations or directives (ok is false for
// those). Brackets outside strings and comments nest; operator characters
// (and '-' in names, '.' in numbers: over-counting is safe) add up per
// level and reset at a newline inside braces; a string adds one level.
//
// With chunk > 0 it also returns top-level split points: offsets just after
// a newline outside any block, string or comment, at least chunk bytes
// apart, where the source can be cut into independently parseable pieces.
func quickNesting(src []byte, chunk int) (bound int, splits []int, ok bool) {
	last := 0
	stack := make([]byte, 1, 64)
	stack[0] = '{'
	ops := make([]int, 1, 64)
	depth, maxDepth := 0, 0
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '{', '[', '(':
			stack = append(stack, c)
			ops = append(ops, 0)
			depth++
		case '}', ']', ')':
			if len(stack) > 1 {
				depth -= 1 + ops[len(ops)-1]
				stack, ops = stack[:len(stack)-1], ops[:len(ops)-1]
			}
		case '\n':
			if stack[len(stack)-1] == '{' {
				depth -= ops[len(ops)-1]
				ops[len(ops)-1] = 0
			}
			if chunk > 0 && len(stack) == 1 && i+1-last >= chunk && i+1 < len(src) {
				last = i + 1
				splits = append(splits, last)
			}
		case '!', '-', '+', '*', '%', '<', '>', '=', '&', '|', '?', '.', ':':
			ops[len(ops)-1]++
			depth++
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				i = skipLine(src, i)
				continue
			}
			if i+1 < len(src) && src[i+1] == '*' {
				end := bytesIndex(src[i+2:], "*/")
				if end < 0 {
					return 0, nil, false
				}
				i += 2 + end + 1
				continue
			}
			ops[len(ops)-1]++
			depth++
		case '#':
			i = skipLine(src, i)
			continue
		case '"':
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				switch src[j] {
				case '\\':
					j++
				case '\n':
					return 0, nil, false
				case '{':
					if src[j-1] == '$' || src[j-1] == '%' {
						return 0, nil, false
					}
				}
			}
			if j >= len(src) {
				return 0, nil, false
			}
			maxDepth = max(maxDepth, depth+1)
			i = j
			continue
		}
		maxDepth = max(maxDepth, depth)
		if src[i] == '<' && i+1 < len(src) && src[i+1] == '<' {
			return 0, nil, false // heredoc
		}
	}
	return maxDepth, splits, true
}

// skipLine returns the index of the newline ending the line at i (or the
// last index), so the caller's loop handles the newline itself.
func skipLine(src []byte, i int) int {
	for i < len(src) && src[i] != '\n' {
		i++
	}
	return i - 1
}

func bytesIndex(b []byte, sep string) int {
	return strings.Index(string(b), sep)
}

// checkNestingJSON checks the nesting of a JSON spec: arrays and objects,
// and the HCL templates inside its strings (".hcl.json" strings may hold
// "${...}" expressions, parsed when they are evaluated).
func checkNestingJSON(src []byte, filename string) hcl.Diagnostics {
	depth, line, col := 0, 1, 1
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '\n':
			line, col = line+1, 0
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case '"':
			start := i + 1
			j := start
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			if j > len(src) {
				j = len(src)
			}
			body := src[start:j]
			if hasInterp(body) {
				pos := hcl.Pos{Line: line, Column: col + 1, Byte: start}
				toks, _ := hclsyntax.LexTemplate(body, filename, pos)
				if d := checkNesting(toks); d != nil {
					return d
				}
			}
			col += j - i
			i = j
		}
		col++
		if depth > MaxNesting {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "JSON nested too deeply",
				Detail:   fmt.Sprintf("Arrays and objects may nest at most %d levels deep.", MaxNesting),
				Subject:  &hcl.Range{Filename: filename, Start: hcl.Pos{Line: line, Column: col, Byte: i}, End: hcl.Pos{Line: line, Column: col + 1, Byte: i + 1}},
			}}
		}
	}
	return nil
}

func hasInterp(b []byte) bool {
	for i := 0; i+1 < len(b); i++ {
		if (b[i] == '$' || b[i] == '%') && b[i+1] == '{' {
			return true
		}
	}
	return false
}

// valueSize estimates the memory an evaluated value holds: string bytes
// plus 8 per element. It stops counting once limit is passed.
func valueSize(v cty.Value, limit int) int {
	if v.IsNull() || !v.IsKnown() {
		return 0
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return len(v.AsString())
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType() || ty.IsMapType() || ty.IsObjectType():
		n := 0
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			n += 8 + valueSize(k, limit) + valueSize(e, limit)
			if n > limit {
				return n
			}
		}
		return n
	}
	return 8
}

// tooBig is the error for a value past MaxValueBytes.
func tooBig(n int) error {
	return fmt.Errorf("the value is larger than %d bytes (at least %d); values are limited to keep the agent's memory bounded", MaxValueBytes, n)
}

// bounded wraps a function so its result is size-checked, and refuses
// arguments that would make it allocate without bound before returning.
func bounded(name string, f function.Function) function.Function {
	spec := &function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if err := preflight(name, args); err != nil {
				return cty.NilVal, err
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if n := valueSize(v, MaxValueBytes); n > MaxValueBytes {
				return cty.NilVal, tooBig(n)
			}
			return v, nil
		},
	}
	return function.New(spec)
}

// hugeWidth matches a format verb with a width or precision of 6+ digits.
var hugeWidth = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`%[-+# 0]*(\d{6,}|\*|\[\d+\]\*)|\.\d{6,}`) }) // compiled on first use, not at every start

// preflight refuses arguments whose result would be huge before the
// function allocates it.
func preflight(name string, args []cty.Value) error {
	known := func(v cty.Value) bool { return v.IsKnown() && !v.IsNull() }
	switch name {
	case "range":
		// range(stop), range(start, stop) or range(start, stop, step).
		var start, stop, step = big.NewFloat(0), big.NewFloat(0), big.NewFloat(1)
		for _, a := range args {
			if !known(a) || a.Type() != cty.Number {
				return nil
			}
		}
		switch len(args) {
		case 1:
			stop = args[0].AsBigFloat()
		case 2:
			start, stop = args[0].AsBigFloat(), args[1].AsBigFloat()
		case 3:
			start, stop, step = args[0].AsBigFloat(), args[1].AsBigFloat(), args[2].AsBigFloat()
		default:
			return nil
		}
		if step.Sign() == 0 {
			return nil // range's own error
		}
		n := new(big.Float).Quo(new(big.Float).Sub(stop, start), step)
		if n.Cmp(big.NewFloat(MaxListLength)) > 0 {
			return fmt.Errorf("range would have %s elements; generated lists are limited to %d", n.Text('g', 6), MaxListLength)
		}
	case "format", "formatlist":
		if len(args) > 0 && known(args[0]) && args[0].Type() == cty.String && hugeWidth().MatchString(args[0].AsString()) {
			return fmt.Errorf("widths and precisions in format strings are limited to 5 digits")
		}
	case "jsondecode":
		if len(args) == 1 && known(args[0]) && args[0].Type() == cty.String {
			if d := checkNestingJSON([]byte(args[0].AsString()), "jsondecode"); d != nil {
				return fmt.Errorf("the JSON nests deeper than %d levels", MaxNesting)
			}
		}
	}
	for _, a := range args {
		if n := valueSize(a, MaxValueBytes); n > MaxValueBytes {
			return tooBig(n)
		}
	}
	return nil
}

// checkStrings walks the decoded raw spec and refuses control characters
// (NUL included) and oversized values in every string attribute and label,
// at the attribute's location. Secrets (expressions) are checked where
// they are evaluated.
func (r *resolver) checkStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			r.checkStrings(v.Elem())
		}
		return
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				r.checkStrings(v.Index(i))
			}
		}
		return
	case reflect.Struct:
	default:
		return
	}
	var body hcl.Body
	if f := v.FieldByName("Body"); f.IsValid() {
		body, _ = f.Interface().(hcl.Body)
	}
	var def *hcl.Range
	if f := v.FieldByName("DefRange"); f.IsValid() {
		if rg, ok := f.Interface().(hcl.Range); ok {
			def = &rg
		}
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("hcl")
		name, kind, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if kind == "block" {
			r.checkStrings(fv)
			continue
		}
		if name == "" || (kind != "" && kind != "optional" && kind != "label") {
			continue
		}
		var strs []string
		switch x := fv.Interface().(type) {
		case string:
			strs = []string{x}
		case *string:
			if x != nil {
				strs = []string{*x}
			}
		case []string:
			strs = x
		default:
			continue
		}
		rng := func() *hcl.Range { // only computed for an error
			if kind == "label" {
				return def
			}
			return at(body, name)
		}
		total := 0
		for _, s := range strs {
			total += len(s) + 8
			if err := input.Text(s); err != nil {
				r.errf(rng(), "Invalid character", "%s %v. Remove it (a newline or control character would break the rendered files).", name, err)
				break
			}
		}
		if total > MaxValueBytes {
			r.errf(rng(), "Value too large", "%s: %v.", name, tooBig(total))
		}
	}
}
