package token

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParseObject checks the top-level scanner against encoding/json: same
// keys (exact, last one wins), same values.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":{"b":[1,"}",{"c":"\""}]},"d":"x\\y"}`, `{"a":1,"a":2}`, `{"A":1,"a":2}`,
		` { "k\u0041" : null , "t" : true } `, `[]`, `"s"`, `{"a":`, `{"e":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // encoding/json rewrites invalid UTF-8 to U+FFFD; lua-cjson and parseObject keep the bytes
		}
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		o, ok := parseObject(b)
		if werr != nil || want == nil {
			if ok && werr != nil {
				t.Fatalf("parseObject accepted %q that encoding/json rejects: %v", b, werr)
			}
			return
		}
		if !ok {
			t.Fatalf("parseObject rejected the object %q", b)
		}
		for k, v := range want {
			got := o.get(k)
			var a, c bytes.Buffer
			if json.Compact(&a, v) != nil || json.Compact(&c, got) != nil || a.String() != c.String() {
				t.Fatalf("key %q: got %q, want %q (input %q)", k, got, v, b)
			}
		}
		for _, k := range o.keys {
			if _, ok := want[k]; !ok {
				t.Fatalf("extra key %q in %q", k, b)
			}
		}
	})
}
