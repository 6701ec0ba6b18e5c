// Package hclfmt is HCL's canonical formatter (hclwrite.Format) without the
// rest of hclwrite: hclwrite/format.go and the token model it needs from
// github.com/hashicorp/hcl/v2 v2.25.0, under the Mozilla Public License 2.0
// (https://mozilla.org/MPL/2.0/) like the originals, unchanged but for the
// package name and hcl's internal grapheme counter.
//
// hclwrite's syntax tree imports github.com/google/go-cmp, whose package
// initialisation (regular expressions, a seeded math/rand source) was about
// a tenth of every jitsi-agent start, `jitsi-agent version` included, for
// the benefit of `fmt` alone (see also internal/hcldecode). The test checks
// that Format gives byte for byte what hclwrite.Format gives.
package hclfmt

// Format returns src in HCL's canonical layout, as hclwrite.Format does. It
// does not check that src parses; callers do (see spec.Format).
func Format(src []byte) []byte {
	tokens := lexConfig(src)
	format(tokens)
	return tokens.Bytes()
}
