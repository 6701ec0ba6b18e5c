package luapattern

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// luaScript reads "hex(subject) hex(pattern)" lines and prints, per line,
// what pcall(string.match, subject, pattern) gives: "nil", "s:<hex>",
// "i:<n>" or "e:<message>".
const luaScript = `
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function tohex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
for line in io.lines() do
  local hs, hp = line:match("^(%x*) (%x*)$")
  local ok, r = pcall(string.match, unhex(hs), unhex(hp))
  if not ok then print("e:" .. tostring(r))
  elseif r == nil then print("nil")
  elseif math.type(r) == "integer" then print("i:" .. r)
  else print("s:" .. tohex(r)) end
end
`

func goVerdict(s, p string) string {
	r, err := Match(s, p)
	switch {
	case err != nil:
		return "e:" + err.Error()
	case !r.Matched:
		return "nil"
	case r.IsPos:
		return fmt.Sprintf("i:%d", r.Position)
	}
	return "s:" + hex.EncodeToString([]byte(r.Value))
}

// corpus is hand-picked cases plus random patterns over the pattern
// alphabet, matched against room-like subjects.
func corpus() [][2]string {
	cases := [][2]string{
		{"weekly-sync", ".*"}, {"a-b", "a-b"}, {"b", "a-b"}, {"room", "["}, {"room", "[a"}, {"room", "%"}, {"room", "r%"},
		{"x", "a["}, {"weekly-sync", "^weekly%-.*$"}, {"weekly-sync", "weekly"}, {"abc", "()b"}, {"abc", "(a)(b"},
		{"abc", "(a"}, {"abc", "a)"}, {"abc", "%1"}, {"aa", "(a)%1"}, {"abc", "%0"}, {"f(a(b)c)", "%b()"}, {"x", "%b"},
		{"x", "%bx"}, {"THE (quick) fox", "%f[%a]%a+"}, {"x", "%fx"}, {"room1", "%d+$"}, {"Room", "%u%l+"},
		{"a.b", "%."}, {"a]b", "[%]]"}, {"a-z", "[a%-z]+"}, {"", ""}, {"", "^$"}, {"abc", "^"}, {"abc", "$"},
		{"abc", "a$b"}, {"täst", "t..st"}, {"täst", "[\xc3][\xa4]"}, {"a\x00b", "%z"}, {"a\x00b", "a.b"},
		{"abc", "[^%a]"}, {"ab12", "[%w_]+"}, {"tenant-room", "(%w+)-(%w+)"}, {"aaa", "a-"}, {"aaa", "a-$"},
		{"abc", "[]"}, {"abc", "[^]"}, {"]", "[]]"}, {"abc", "[a-]"}, {"-", "[a-]"}, {"abc", "%w-%w"},
		{strings.Repeat("a", 300), strings.Repeat("a?", 250)}, {"ab", strings.Repeat("()", 40)},
		{"abc", "((((a))))"}, {"xyz", "[x-z]+"}, {"z", "[z-a]"}, {"%", "%%"}, {"%", "[%%]"}, {"a", "[%"},
		{"abc", "%f[%w]"}, {"abc", "%f[^%w]"}, {"a b", "%s"}, {"\t", "%c"}, {"~", "%p"}, {"a", "%G"},
		{"(x)", "%b)("}, {"abab", "(ab)%1"}, {"abab", "(ab)()%2"}, {"aaab", ".-b"}, {"x", "x+?"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := []string{"a", "b", "-", ".", "%", "%a", "%d", "%w", "%W", "[", "]", "^", "$", "(", ")", "()", "*", "+", "?",
		"%b()", "%f[%w]", "%1", "[a-c]", "[^b]", "x", "1", "%%", "%-", "%]"}
	subjects := []string{"", "a", "ab-c", "abc123", "b-a-b", "(a)b", "x%y", "aaa", "weekly-sync", "[t]room", "ä"}
	for i := 0; i < 3000; i++ {
		var p strings.Builder
		for n := rng.IntN(7); n >= 0; n-- {
			p.WriteString(alpha[rng.IntN(len(alpha))])
		}
		cases = append(cases, [2]string{subjects[rng.IntN(len(subjects))], p.String()})
	}
	return cases
}

// TestAgainstLua runs every case through Debian's lua5.4 and requires the
// same value, the same nil or the same error message.
func TestAgainstLua(t *testing.T) {
	lua := testenv.LookPath(t, "lua5.4", "apt-get install lua5.4")
	cases := corpus()
	var in strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&in, "%s %s\n", hex.EncodeToString([]byte(c[0])), hex.EncodeToString([]byte(c[1])))
	}
	cmd := exec.Command(lua, "-e", luaScript)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lua: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	bad := 0
	for i, c := range cases {
		if !sc.Scan() {
			t.Fatalf("lua answered %d of %d cases", i, len(cases))
		}
		if got, want := goVerdict(c[0], c[1]), sc.Text(); got != want {
			bad++
			if bad <= 20 {
				t.Errorf("string.match(%q, %q): Go %s, Lua %s", c[0], c[1], got, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d cases differ", bad, len(cases))
	}
}

// TestCheck: a pattern Check accepts raises no error on any subject of the
// corpus, and Check rejects the patterns that always raise one.
func TestCheck(t *testing.T) {
	subjects := []string{"", "a", "ab-c", "abc123", "(a)b", "aaa", "weekly-sync", "ab", "abab"}
	for _, c := range corpus() {
		if Check(c[1]) != nil {
			continue
		}
		for _, s := range subjects {
			if _, err := Match(s, c[1]); err != nil && err.Error() != "pattern too complex" {
				t.Errorf("Check accepts %q but matching %q raises %v", c[1], s, err)
			}
		}
	}
	for _, p := range []string{"[", "a[", "%", "(a", "a)", "%1", "(%1)", "%b", "%fx", "a%"} {
		if err := Check(p); err == nil {
			t.Errorf("Check(%q) accepted", p)
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, c := range corpus()[:60] {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 256 || len(p) > 64 {
			return
		}
		r, err := Match(s, p)
		if err != nil {
			if !IsError(err) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if r.Matched && !r.IsPos && !strings.Contains(s, r.Value) {
			t.Fatalf("match %q not in %q", r.Value, s)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	for b.Loop() {
		if _, err := Match("weekly-sync-2026-11-27", "^weekly%-sync%-%d+%-%d+%-%d+$"); err != nil {
			b.Fatal(err)
		}
	}
}
