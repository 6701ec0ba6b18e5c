package spec

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/jitsi-agent/jitsi-agent/internal/hclfmt"
)

// Format returns the canonical formatting of an HCL spec. It refuses input
// that does not parse (the formatter would otherwise happily "format" broken
// files). JSON specs are returned unchanged with an error: hclwrite only
// knows the native syntax.
func Format(filename string, src []byte) ([]byte, hcl.Diagnostics) {
	if strings.HasSuffix(filename, ".json") {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot format JSON specs",
			Detail:   fmt.Sprintf("%s is in JSON syntax; fmt only formats the native HCL syntax. Format JSON with a JSON tool (e.g. jq .).", filename),
		}}
	}
	_, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	out := hclfmt.Format(src)
	if !bytes.HasSuffix(out, []byte("\n")) && len(out) > 0 {
		out = append(out, '\n')
	}
	return out, nil
}
