// Package hcldecode is the decoding half of HCL's gohcl package
// (DecodeBody, DecodeExpression, ImpliedBodySchema): gohcl's decode.go,
// schema.go and types.go from github.com/hashicorp/hcl/v2 v2.25.0, under the
// Mozilla Public License 2.0 (https://mozilla.org/MPL/2.0/) like the
// originals, unchanged but for the package name.
//
// gohcl's encoder imports hclwrite, and hclwrite imports
// github.com/google/go-cmp, whose package initialisation (regular
// expressions, a seeded math/rand source) was about a tenth of every
// jitsi-agent start, `jitsi-agent version` included. The spec only decodes;
// without the encoder neither package is in the binary. The tests decode
// the same bodies with gohcl and compare.
package hcldecode
