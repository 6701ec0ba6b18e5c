package token

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCJSON: the lua-cjson decoder never panics, agrees with encoding/json
// on standard JSON (valid UTF-8, no NUL, no lone surrogate escapes, depth
// within lua-cjson's 1000), and whatever it accepts re-encodes.
func FuzzCJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":{"b":[1,"}",{"c":"\""}]},"d":"x\\y"}`, `{"a":1,"a":2}`, `{"A":1,"a":2}`,
		` { "k\u0041" : null , "t" : true } `, `[]`, `"s"`, `{"a":`, `{"e":1e400}`, `0x10`, `Infinity`, `-nan`, `007`,
		"\"a\x01b\"", `"\ud800"`, `"\ud83d\ude00"`, strings.Repeat("[", 1001), "{}\x00x", "+1", "-.5", "1.", "nan(abc)"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := cjsonDecode(b)
		if err != "" {
			if standard(b) {
				t.Fatalf("refused standard JSON %q: %s", b, err)
			}
			return
		}
		if !standard(b) {
			return
		}
		var want any
		if err := json.Unmarshal(b, &want); err != nil {
			if strings.Contains(err.Error(), "cannot unmarshal number") {
				return // strtod gives +-Inf; encoding/json refuses
			}
			t.Fatalf("accepted %q that encoding/json refuses: %v", b, err)
		}
		if got := v.goValue(); !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("%q: got %#v, want %#v", b, got, want)
		}
	})
}

// standard reports whether encoding/json and lua-cjson must agree on b.
func standard(b []byte) bool {
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 || !json.Valid(b) || bytes.Contains(b, []byte(`\u`)) {
		return false
	}
	depth, maxDepth := 0, 0
	inStr := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			depth++
			maxDepth = max(maxDepth, depth)
		case !inStr && (c == ']' || c == '}'):
			depth--
		}
	}
	return maxDepth <= cjsonMaxDepth
}

// normalize makes NaN comparable (it never comes from standard JSON).
func normalize(v any) any {
	if f, ok := v.(float64); ok && math.IsNaN(f) {
		return "nan"
	}
	return v
}

func TestCJSONNumbers(t *testing.T) {
	for in, want := range map[string]float64{"0x10": 16, "007": 7, "+1": 1, "-.5": -0.5, "1.": 1, "1e2": 100, "0x1p4": 16, "0x.8": 0.5} {
		v, err := cjsonDecode([]byte(in))
		if err != "" || v.t != lNum || v.n != want {
			t.Errorf("%s: %+v %s, want %v", in, v, err, want)
		}
	}
	for _, in := range []string{"Infinity", "-inf", "NaN", "nan(1)"} {
		if v, err := cjsonDecode([]byte(in)); err != "" || v.t != lNum {
			t.Errorf("%s: %+v %s", in, v, err)
		}
	}
	for _, in := range []string{".5", "0x", "1e", "+", "- 1", "1_0", "True", "nul", `"\ud800"`, `"\x"`, "[1,]", "{\x00}"} {
		if _, err := cjsonDecode([]byte(in)); err == "" {
			t.Errorf("%q accepted", in)
		}
	}
}
