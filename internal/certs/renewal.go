package certs

import (
	"bytes"
	"slices"
	"strings"
)

// IsRenewal reports whether the PEM chain next renews the deployed one:
// both parse, their leaves cover exactly the same names with the same key
// type, next does not expire earlier, and the bytes differ. A renewal is
// not a change of the spec: the daemon deploys it even while a rolled-back
// generation is held.
func IsRenewal(deployed, next []byte) bool {
	if bytes.Equal(deployed, next) {
		return false
	}
	old, _, err := parseChain(deployed)
	if err != nil {
		return false
	}
	nw, _, err := parseChain(next)
	if err != nil {
		return false
	}
	a, b := old[0], nw[0]
	return slices.Equal(leafNames(a.DNSNames, a.Subject.CommonName), leafNames(b.DNSNames, b.Subject.CommonName)) &&
		keyTypeOf(a) == keyTypeOf(b) && keyTypeOf(a) != "" && !b.NotAfter.Before(a.NotAfter)
}

// leafNames are a leaf's DNS names, lower-cased and sorted (the common
// name when it has none).
func leafNames(dns []string, cn string) []string {
	if len(dns) == 0 && cn != "" {
		dns = []string{cn}
	}
	out := make([]string, 0, len(dns))
	for _, n := range dns {
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
