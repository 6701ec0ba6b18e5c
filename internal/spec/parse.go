package spec

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// parseChunk is the size of the pieces a large native-syntax spec is parsed
// in. HCL lexes a whole file into tokens before parsing (about 80 bytes per
// token); parsing top-level pieces one at a time keeps that transient
// memory at one piece's worth, so a spec with 100,000 templates stays
// within a few hundred MB.
const parseChunk = 256 << 10

// parseHCL parses a native-syntax spec. Sources larger than parseChunk that
// the quick scanner can split at top-level boundaries are parsed piece by
// piece and joined into one body; others are parsed whole.
func parseHCL(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	var splits []int
	if len(src) > parseChunk {
		_, splits, _ = quickNesting(src, parseChunk)
	}
	if len(splits) == 0 {
		return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	}
	var diags hcl.Diagnostics
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
		body.Blocks = append(body.Blocks, b.Blocks...)
		body.EndRange = b.EndRange
		pos = hcl.Pos{Line: pos.Line + bytes.Count(piece, []byte{'\n'}), Column: 1, Byte: end}
		start = end
	}
	body.SrcRange = hcl.Range{Filename: filename, Start: hcl.InitialPos, End: body.EndRange.End}
	return &hcl.File{Body: body, Bytes: src, Nav: navigation{body}}, diags
}

// navigation names the top-level block around an offset, like hclsyntax's
// own (which is not exported), by binary search.
type navigation struct{ root *hclsyntax.Body }

// ContextString implements the interface WriteDiagnostics looks for.
func (n navigation) ContextString(offset int) string {
	blocks := n.root.Blocks
	i := sort.Search(len(blocks), func(i int) bool { return blocks[i].Range().End.Byte > offset })
	if i == len(blocks) || !blocks[i].Range().ContainsOffset(offset) {
		return ""
	}
	b := blocks[i]
	var buf bytes.Buffer
	buf.WriteString(b.Type)
	for _, l := range b.Labels {
		fmt.Fprintf(&buf, " %q", l)
	}
	return buf.String()
}
