package spec

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	gohcl "github.com/jitsi-agent/jitsi-agent/internal/hcldecode"
)

// parseChunk is the size of the pieces a large native-syntax spec is parsed
// in. HCL lexes a whole file into tokens before parsing (about 80 bytes per
// token); parsing top-level pieces one at a time keeps that transient
// memory at one piece's worth.
const parseChunk = 64 << 10

// parsed is a native-syntax spec after parsing: the file (its body holds
// every top-level attribute and every block but the compacted templates)
// and the template blocks already decoded (see compactTemplate).
type parsed struct {
	file      *hcl.File
	templates []rawTemplate
}

// parseHCL parses a native-syntax spec. Sources larger than parseChunk that
// the quick scanner can split at top-level boundaries are parsed piece by
// piece and joined into one body. Template blocks whose attributes are
// constants are decoded as each piece is parsed and only their positions
// are kept, not their syntax trees: a syntax tree costs about 2 KB per
// template block, which for 100,000 templates was most of the memory
// validation needed.
func parseHCL(src []byte, filename string) (parsed, hcl.Diagnostics) {
	var splits []int
	if len(src) > parseChunk {
		_, splits, _ = quickNesting(src, parseChunk)
	}
	var diags hcl.Diagnostics
	var templates []rawTemplate
	var nav navigation
	body := &hclsyntax.Body{Attributes: hclsyntax.Attributes{}}
	start, pos := 0, hcl.InitialPos
	for _, end := range append(splits, len(src)) {
		piece := src[start:end]
		f, d := hclsyntax.ParseConfig(piece, filename, pos)
		diags = append(diags, d...)
		b := f.Body.(*hclsyntax.Body)
		names := make([]string, 0, len(b.Attributes))
		for name := range b.Attributes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			a := b.Attributes[name]
			if prev, dup := body.Attributes[name]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Attribute redefined",
					Detail:   fmt.Sprintf("The argument %q was already set at %s. Each argument may be set only once.", name, prev.NameRange),
					Subject:  &a.NameRange,
				})
				continue
			}
			body.Attributes[name] = a
		}
		for _, blk := range b.Blocks {
			rg := blk.Range()
			nav = append(nav, navBlock{start: rg.Start.Byte, end: rg.End.Byte, typ: intern(blk.Type), labels: blk.Labels})
			if !d.HasErrors() {
				if t, ok := compactTemplate(blk); ok {
					templates = append(templates, t)
					continue
				}
			}
			body.Blocks = append(body.Blocks, blk)
		}
		body.EndRange = b.EndRange
		pos = hcl.Pos{Line: pos.Line + bytes.Count(piece, []byte{'\n'}), Column: 1, Byte: end}
		start = end
	}
	body.SrcRange = hcl.Range{Filename: filename, Start: hcl.InitialPos, End: body.EndRange.End}
	return parsed{file: &hcl.File{Body: body, Bytes: src, Nav: nav}, templates: templates}, diags
}

// compactTemplate decodes a template block on its own when every
// attribute is a constant (no variable, no function call, in any branch:
// an untaken conditional branch still takes part in the result's type), so
// decoding it later with the spec's evaluation context would give the same
// values, and succeeds only when that gives no diagnostic at all. Each attribute is
// decoded as the struct decoder would (DecodeExpression into the field);
// anything unusual (an unknown or missing attribute, a nested block, a
// second label) is left to the full decoder and its diagnostics. The
// block's body is replaced by the positions of its attributes, which is
// all the later checks need to point at them.
func compactTemplate(blk *hclsyntax.Block) (rawTemplate, bool) {
	if blk.Type != "template" || len(blk.Labels) != 1 || len(blk.Body.Blocks) > 0 {
		return rawTemplate{}, false
	}
	t := rawTemplate{Name: blk.Labels[0], DefRange: blk.DefRange()}
	var source, destination bool
	for name, a := range blk.Body.Attributes {
		var field any
		switch name {
		case "source":
			field, source = &t.Source, true
		case "destination":
			field, destination = &t.Destination, true
		case "mode":
			field = &t.Mode
		case "owner":
			field = &t.Owner
		case "group":
			field = &t.Group
		case "notify":
			field = &t.Notify
		case "check":
			field = &t.Check
		case "drift":
			field = &t.Drift
		default:
			return rawTemplate{}, false
		}
		if !constant(a.Expr) {
			return rawTemplate{}, false
		}
		if d := gohcl.DecodeExpression(a.Expr, nil, field); len(d) > 0 {
			return rawTemplate{}, false
		}
	}
	if !source || !destination {
		return rawTemplate{}, false
	}
	t.Body = newLocatedBody(blk.Body)
	return t, true
}

// constant reports whether an expression refers to nothing: no variable or
// local, no function call, anywhere in it.
func constant(e hclsyntax.Expression) bool {
	ok := true
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		switch n.(type) {
		case *hclsyntax.ScopeTraversalExpr, *hclsyntax.FunctionCallExpr, *hclsyntax.RelativeTraversalExpr:
			ok = false
		}
		return nil
	})
	return ok
}

// mergeTemplates puts the compacted templates and the ones decoded from
// the syntax tree back into source order.
func mergeTemplates(decoded, compact []rawTemplate) []rawTemplate {
	if len(decoded) == 0 {
		return compact
	}
	out := make([]rawTemplate, 0, len(decoded)+len(compact))
	out = append(append(out, decoded...), compact...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].DefRange.Start.Byte < out[j].DefRange.Start.Byte })
	return out
}

// pos32 and span are a compact hcl.Pos and hcl.Range (the file name is the
// body's).
type pos32 struct{ line, column, byte int32 }

type span struct{ start, end pos32 }

func toSpan(r hcl.Range) span {
	p := func(p hcl.Pos) pos32 { return pos32{int32(p.Line), int32(p.Column), int32(p.Byte)} }
	return span{p(r.Start), p(r.End)}
}

func (s span) rng(filename string) hcl.Range {
	p := func(p pos32) hcl.Pos { return hcl.Pos{Line: int(p.line), Column: int(p.column), Byte: int(p.byte)} }
	return hcl.Range{Filename: filename, Start: p(s.start), End: p(s.end)}
}

// locatedBody stands in for a decoded block's body: it knows where each
// attribute's value was written (for diagnostics through at()) and nothing
// else. Its attributes' expressions cannot be evaluated.
type locatedBody struct {
	filename string
	open     span // where the block's body starts: MissingItemRange
	attrs    []locatedAttr
}

type locatedAttr struct {
	name  string
	value span
}

// intern returns the schema's copy of a template attribute name, so each
// located body does not keep its own.
func intern(name string) string {
	switch name {
	case "source":
		return "source"
	case "destination":
		return "destination"
	case "mode":
		return "mode"
	case "owner":
		return "owner"
	case "group":
		return "group"
	case "notify":
		return "notify"
	case "check":
		return "check"
	case "drift":
		return "drift"
	case "template":
		return "template"
	}
	return name
}

func newLocatedBody(b *hclsyntax.Body) *locatedBody {
	lb := &locatedBody{filename: b.SrcRange.Filename, open: toSpan(b.MissingItemRange()), attrs: make([]locatedAttr, 0, len(b.Attributes))}
	for name, a := range b.Attributes {
		lb.attrs = append(lb.attrs, locatedAttr{name: intern(name), value: toSpan(a.Expr.Range())})
	}
	sort.Slice(lb.attrs, func(i, j int) bool { return lb.attrs[i].name < lb.attrs[j].name })
	return lb
}

// PartialContent implements hcl.Body: the schema's attributes that were
// set, each with an expression that only knows its range.
func (b *locatedBody) PartialContent(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	c := &hcl.BodyContent{Attributes: hcl.Attributes{}, MissingItemRange: b.MissingItemRange()}
	for _, s := range schema.Attributes {
		for _, a := range b.attrs {
			if a.name == s.Name {
				rg := a.value.rng(b.filename)
				c.Attributes[s.Name] = &hcl.Attribute{Name: a.name, Expr: locatedExpr{rg}, Range: rg, NameRange: rg}
			}
		}
	}
	return c, b, nil
}

// Content implements hcl.Body like PartialContent: the block was decoded
// and checked against its schema already.
func (b *locatedBody) Content(schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, _, d := b.PartialContent(schema)
	return c, d
}

// JustAttributes implements hcl.Body.
func (b *locatedBody) JustAttributes() (hcl.Attributes, hcl.Diagnostics) {
	out := hcl.Attributes{}
	for _, a := range b.attrs {
		rg := a.value.rng(b.filename)
		out[a.name] = &hcl.Attribute{Name: a.name, Expr: locatedExpr{rg}, Range: rg, NameRange: rg}
	}
	return out, nil
}

// MissingItemRange implements hcl.Body.
func (b *locatedBody) MissingItemRange() hcl.Range { return b.open.rng(b.filename) }

// locatedExpr is the range of an expression whose value was decoded
// already.
type locatedExpr struct{ rg hcl.Range }

// Value implements hcl.Expression; the value is not kept, so asking for it
// is an error (no caller does).
func (e locatedExpr) Value(*hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	return cty.DynamicVal, hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Value not retained",
		Detail:   "This attribute was decoded when the spec was parsed; only its position was kept.",
		Subject:  e.rg.Ptr(),
	}}
}

// Variables implements hcl.Expression: the value was a constant.
func (e locatedExpr) Variables() []hcl.Traversal { return nil }

// Range implements hcl.Expression.
func (e locatedExpr) Range() hcl.Range { return e.rg }

// StartRange implements hcl.Expression.
func (e locatedExpr) StartRange() hcl.Range { return e.rg }

// navigation names the top-level block around an offset, like hclsyntax's
// own (which is not exported), by binary search over every top-level
// block's extent (compacted templates included).
type navigation []navBlock

type navBlock struct {
	start, end int
	typ        string
	labels     []string
}

// ContextString implements the interface WriteDiagnostics looks for.
func (n navigation) ContextString(offset int) string {
	i := sort.Search(len(n), func(i int) bool { return n[i].end > offset })
	if i == len(n) || offset < n[i].start {
		return ""
	}
	b := n[i]
	var buf bytes.Buffer
	buf.WriteString(b.typ)
	for _, l := range b.labels {
		fmt.Fprintf(&buf, " %q", l)
	}
	return buf.String()
}
