package render

import (
	"encoding/json"
	"strings"
	"testing"
)

var hostileValues = []string{
	`plain`,
	`quote"double`,
	`quote'single`,
	"new\nline",
	"cr\rlf\r\n",
	"tab\tand\x00nul\x1bescape\x7f",
	`back\slash\`,
	`]]`,
	`]=]`,
	`--[[ comment`,
	`${HOME}`,
	`${?x}`,
	`<!--# exec cmd="id" -->`,
	`</script>`,
	"line\u2028sep\u2029",
	"üñíçødé ✓",
	`\u0041`,
	`\`,
	"trailing digit after control \x01" + "2",
}

func TestLuaStringDecodes(t *testing.T) {
	for _, v := range hostileValues {
		got := luaString(v)
		dec, err := decodeLua(got)
		if err != nil {
			t.Errorf("luaString(%q) = %s: %v", v, got, err)
			continue
		}
		if dec != v {
			t.Errorf("luaString(%q) = %s decodes to %q", v, got, dec)
		}
		if strings.ContainsAny(got[1:len(got)-1], "\n\r") {
			t.Errorf("luaString(%q) has a raw line break", v)
		}
	}
	if got := luaList([]string{`a"`, "b"}); got != `{ "a\"", "b" }` {
		t.Errorf("luaList = %s", got)
	}
	if got := luaList(nil); got != "{ }" {
		t.Errorf("luaList(nil) = %s", got)
	}
}

// decodeLua decodes the escapes luaString emits, following the Lua manual.
func decodeLua(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", errf("not quoted")
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return "", errf("unescaped quote")
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", errf("dangling backslash")
		}
		switch e := s[i]; {
		case e == 'n':
			b.WriteByte('\n')
		case e == 'r':
			b.WriteByte('\r')
		case e == 't':
			b.WriteByte('\t')
		case e == '"' || e == '\\':
			b.WriteByte(e)
		case e >= '0' && e <= '9':
			n := 0
			j := i
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '9'; j++ {
				n = n*10 + int(s[j]-'0')
			}
			b.WriteByte(byte(n))
			i = j - 1
		default:
			return "", errf("unknown escape")
		}
	}
	return b.String(), nil
}

type errf string

func (e errf) Error() string { return string(e) }

func TestHOCONAndJSRoundTrip(t *testing.T) {
	for _, v := range hostileValues {
		if !utfValid(v) {
			continue
		}
		h, err := hoconString(v)
		if err != nil {
			t.Fatalf("hoconString(%q): %v", v, err)
		}
		var dec string
		if err := json.Unmarshal([]byte(h), &dec); err != nil || dec != v {
			t.Errorf("hoconString(%q) = %s: decodes to %q (%v)", v, h, dec, err)
		}
		if strings.ContainsAny(h, "\n\r") {
			t.Errorf("hoconString(%q) has a raw line break", v)
		}
		j, err := jsLiteral(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(j), &dec); err != nil || dec != v {
			t.Errorf("jsLiteral(%q) = %s: decodes to %q (%v)", v, j, dec, err)
		}
		for _, bad := range []string{"<!--#", "</script", "\u2028", "\u2029", "\n"} {
			if strings.Contains(j, bad) {
				t.Errorf("jsLiteral(%q) = %s contains %q", v, j, bad)
			}
		}
	}
	if _, err := hoconString("bad\xffutf8"); err == nil {
		t.Error("hoconString accepted invalid UTF-8")
	}
	if got, _ := hoconList([]string{"a", `b"`}); got != `[ "a", "b\"" ]` {
		t.Errorf("hoconList = %s", got)
	}
	if got, _ := hoconList(nil); got != "[]" {
		t.Errorf("hoconList(nil) = %s", got)
	}
}

func utfValid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestNginxString(t *testing.T) {
	got, err := nginxString(`/etc/we"ird dir;{}\x/cert.pem`)
	if err != nil || got != `"/etc/we\"ird dir;{}\\x/cert.pem"` {
		t.Errorf("nginxString = %s, %v", got, err)
	}
	for _, bad := range []string{"/etc/$host/cert", "new\nline", "nul\x00"} {
		_, err := nginxString(bad)
		if err == nil {
			t.Errorf("nginxString(%q) accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error message repeats the value: %v", err)
		}
	}
}

func TestLineValue(t *testing.T) {
	if got, err := lineValue(`se"cr#et'x y`); err != nil || got != `se"cr#et'x y` {
		t.Errorf("lineValue = %q, %v", got, err)
	}
	if got, err := lineValue(3478); err != nil || got != "3478" {
		t.Errorf("lineValue(int) = %q, %v", got, err)
	}
	for _, bad := range []string{"secret\nno-auth", "x\r", " qqv", "qqw "} {
		_, err := lineValue(bad)
		if err == nil {
			t.Errorf("lineValue(%q) accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), strings.TrimSpace(bad)) {
			t.Errorf("error message repeats the value: %v", err)
		}
	}
	if _, err := lineValue(1.5); err == nil {
		t.Error("lineValue(float) accepted")
	}
}

func TestShellAndDart(t *testing.T) {
	if got := shellQuote(`it's $HOME`); got != `'it'\''s $HOME'` {
		t.Errorf("shellQuote = %s", got)
	}
	if got := dartString("a\"b$c\\\n"); got != `"a\"b\$c\\\n"` {
		t.Errorf("dartString = %s", got)
	}
}

func TestRedactionFormsCoverEscapes(t *testing.T) {
	v := `abc"def\ghi'jkl0123456789abcdefXYZ`
	forms := RedactionForms(v)
	for _, quoted := range []string{luaString(v), shellQuote(v), dartString(v)} {
		hidden := false
		for _, f := range forms {
			if strings.Contains(quoted, f) {
				hidden = true
			}
		}
		if !hidden {
			t.Errorf("no redaction form matches %d-byte quoted value", len(quoted))
		}
	}
	if len(forms) < 3 {
		t.Errorf("only %d forms", len(forms))
	}
}
