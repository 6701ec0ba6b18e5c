package room

import (
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func TestNode(t *testing.T) {
	cases := map[string]string{
		"weekly-sync":    "weekly-sync",
		"Weekly Sync":    "weekly%20sync",
		"weekly%20sync":  "weekly%20sync",
		"Weekly%20Sync":  "weekly%20sync",
		"täst":           "t%c3%a4st",
		"T%C3%A4ST":      "t%c3%a4st",
		"ＭＥＥＴ":           "meet", // NFKC folds full-width letters
		"ﬁle":            "file", // NFKC ligature
		"Привет":         "%d0%bf%d1%80%d0%b8%d0%b2%d0%b5%d1%82",
		"100%":           "100%25",                   // malformed escape: taken literally
		"a%zzb":          "a%25zzb",                  // malformed escape
		"%ff":            "%25ff",                    // decodes to invalid UTF-8: taken literally
		"it's(ok)!~*._-": "it's(ok)!~*._-",           // encodeURIComponent's unreserved set
		"ΟΔΟΣ":           "%ce%bf%ce%b4%ce%bf%cf%82", // final sigma, like JS toLowerCase
		"":               "",
	}
	for in, want := range cases {
		if got := Node(in); got != want {
			t.Errorf("Node(%q) = %q, want %q", in, got, want)
		}
		if got := Node(Node(in)); got != want && in != "100%" && in != "a%zzb" && in != "%ff" {
			t.Errorf("Node(Node(%q)) = %q, want %q (idempotent)", in, got, want)
		}
	}
}

func TestClaimMatches(t *testing.T) {
	node := Node("Weekly Sync")
	for claim, want := range map[string]bool{
		"weekly%20sync": true,
		"Weekly%20Sync": true,
		"WEEKLY%20SYNC": true,
		"*":             true,
		"weekly sync":   false, // Prosody does not encode the claim
		"Weekly Sync":   false,
		"weekly":        false,
	} {
		if got := ClaimMatches(claim, node); got != want {
			t.Errorf("ClaimMatches(%q, %q) = %v, want %v", claim, node, got, want)
		}
	}
	// Prosody's string.lower is ASCII-only: an upper-case non-ASCII claim fails (#16206).
	if ClaimMatches("ПРИВЕТ", Node("привет")) {
		t.Error("upper-case Cyrillic claim must not match")
	}
}

func TestValidate(t *testing.T) {
	good := []string{"weekly-sync", "Weekly Sync", "täst", "weekly%20sync", "team.standup", "a", strings.Repeat("a", MaxNodeBytes),
		"config", "static2", "my-http-bind"}
	for _, n := range good {
		if err := Validate(n); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", n, err)
		}
	}
	bad := map[string]string{
		"":                                  "empty",
		"   ":                               "white space",
		" x":                                "white space",
		"a/b":                               "strips",
		"a%2Fb":                             "strips",
		"who?":                              "strips",
		"[t]room":                           "strips",
		"a@b":                               "strips",
		`a\b`:                               "strips",
		"a\tb":                              "control",
		"a\u2028b":                          "white-space",
		"100%":                              "'%'",
		"config.js":                         "collides",
		"CONFIG.JS":                         "collides",
		"http-bind":                         "collides",
		"xmpp-websocket":                    "collides",
		"static":                            "collides",
		"libs":                              "collides",
		".well-known":                       "collides",
		"external_api.js":                   "collides",
		"_unlock":                           "collides",
		"_api":                              "collides",
		"conference-request":                "collides",
		"robots.txt":                        "collides",
		"foo.html":                          "collides",
		"__jicofo-health-check-abc":         "jicofo",
		"*":                                 "wildcard",
		strings.Repeat("a", MaxNodeBytes+1): "bytes after percent-encoding",
		strings.Repeat("ä", 171):            "bytes after percent-encoding", // 171*6 = 1026
		"\xff":                              "UTF-8",
	}
	for n, want := range bad {
		err := Validate(n)
		var re *Error
		if !errors.As(err, &re) {
			t.Errorf("Validate(%q) = %v, want *Error containing %q", n, err, want)
			continue
		}
		if !strings.Contains(re.Reason, want) {
			t.Errorf("Validate(%q) reason %q, want it to contain %q", n, re.Reason, want)
		}
		if re.Fix == "" {
			t.Errorf("Validate(%q): no fix hint", n)
		}
	}
}

var sanitizedRE = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

func checkSanitized(t *testing.T, id, got string) {
	t.Helper()
	if !sanitizedRE.MatchString(got) {
		t.Fatalf("Sanitize(%q) = %q: not [a-z0-9-]{1,64}", id, got)
	}
	if err := Validate(got); err != nil {
		t.Fatalf("Sanitize(%q) = %q fails Validate: %v", id, got, err)
	}
	if Node(got) != got {
		t.Fatalf("Sanitize(%q) = %q is not its own node %q", id, got, Node(got))
	}
}

func TestSanitize(t *testing.T) {
	keep := []string{"abc", "stream-42", "a-b-c"}
	for _, id := range keep {
		if got := Sanitize(id, false, nil); got != id {
			t.Errorf("Sanitize(%q) = %q, want it unchanged", id, got)
		}
	}
	folded := map[string]string{
		"Stream 42":    "stream-42-",
		"täst":         "tast-",
		"static":       "static-",
		"http-bind":    "http-bind-",
		"":             "room-",
		"!!!":          "room-",
		"a--b":         "a-b-",
		"Ünïcödé Ñame": "unicode-name-",
	}
	for id, prefix := range folded {
		got := Sanitize(id, false, nil)
		checkSanitized(t, id, got)
		if !strings.HasPrefix(got, prefix) || len(got) != len(prefix)+digestSuffixLen {
			t.Errorf("Sanitize(%q) = %q, want %q + %d hex digits", id, got, prefix, digestSuffixLen)
		}
	}
	if Sanitize("ABC", false, nil) == Sanitize("abc", false, nil) {
		t.Error("ids differing in case must stay distinct")
	}
	long := strings.Repeat("x", 500)
	checkSanitized(t, long, Sanitize(long, false, nil))

	secret := []byte("0123456789abcdef0123456789abcdef")
	a1 := Sanitize("stream-42", true, secret)
	a2 := Sanitize("stream-42", true, secret)
	b := Sanitize("stream-43", true, secret)
	c := Sanitize("stream-42", true, []byte("another secret, also long enough"))
	checkSanitized(t, "stream-42", a1)
	if a1 != a2 {
		t.Errorf("unguessable names not stable: %q vs %q", a1, a2)
	}
	if a1 == b || a1 == c {
		t.Errorf("unguessable names collide: %q %q %q", a1, b, c)
	}
	if !strings.HasPrefix(a1, "stream-42-") || len(a1) != len("stream-42-")+unguessableSuffixLen {
		t.Errorf("unguessable name %q: want stream-42- + %d chars", a1, unguessableSuffixLen)
	}
	checkSanitized(t, long, Sanitize(long, true, secret))
}

func TestValidateTenant(t *testing.T) {
	for _, ok := range []string{"acme", "team-1", "a"} {
		if err := ValidateTenant(ok); err != nil {
			t.Errorf("ValidateTenant(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Acme", "a_b", "a.b", "-a", "a-", strings.Repeat("a", 64)} {
		if ValidateTenant(bad) == nil {
			t.Errorf("ValidateTenant(%q) = nil, want error", bad)
		}
	}
}

// TestNodeMatchesJavaScript runs the client's normalisation (decodeURIComponent
// with fallback, NFKC, toLowerCase, encodeURIComponent, toLowerCase) in the
// real JavaScript engine and compares it with Node for a corpus of names.
func TestNodeMatchesJavaScript(t *testing.T) {
	nodeBin := testenv.LookPath(t, "node", "apt-get install nodejs")
	corpus := []string{"Weekly Sync", "täst", "T%C3%A4ST", "ＭＥＥＴ", "ﬁle", "Привет", "ПРИВЕТ", "100%", "a%zzb", "%ff",
		"it's(ok)!~*._-", "ΟΔΟΣ", "İstanbul", "ǅemal", "Straße", "ß", "ﬀ", "日本語の会議", "😀 party", "a+b c", "%E2%82%AC",
		"Ⅻ", "㍿", "ｶﾀｶﾅ", "e\u0301", "x%2Fy", "%41%42", "ΣΑΣ ΣΑΣ", "ẞ", "Ω", "K", "ǈ"}
	in, err := json.Marshal(corpus)
	if err != nil {
		t.Fatal(err)
	}
	const script = `
const names = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = names.map((r) => {
  try { r = decodeURIComponent(r); } catch (e) { /* client keeps the raw name */ }
  return encodeURIComponent(r.normalize('NFKC').toLowerCase()).toLowerCase();
});
process.stdout.write(JSON.stringify(out));`
	cmd := exec.Command(nodeBin, "-e", script)
	cmd.Stdin = strings.NewReader(string(in))
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var want []string
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("node output %q: %v", raw, err)
	}
	for i, name := range corpus {
		if got := Node(name); got != want[i] {
			t.Errorf("Node(%q) = %q, JavaScript says %q", name, got, want[i])
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "abc", "Stream 42", "täst", "static", "http-bind", "__jicofo-health-check",
		strings.Repeat("x-", 80), "\xff\xfe", "a\x00b", "ΟΔΟΣ", "config.js", "-", "😀"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	secret := []byte("fuzz secret fuzz secret fuzz sec")
	f.Fuzz(func(t *testing.T, id string, unguessable bool) {
		got := Sanitize(id, unguessable, secret)
		checkSanitized(t, id, got)
		if again := Sanitize(id, unguessable, secret); again != got {
			t.Fatalf("Sanitize(%q) not stable: %q then %q", id, got, again)
		}
	})
}

func FuzzRoomNode(f *testing.F) {
	for _, s := range []string{"Weekly Sync", "täst", "%ff", "100%", "ΟΔΟΣ", "%E2%82%AC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := Node(name)
		if !utf8.ValidString(n) {
			t.Fatalf("Node(%q) = %q: not UTF-8", name, n)
		}
		for i := 0; i < len(n); i++ {
			if n[i] >= utf8.RuneSelf || ('A' <= n[i] && n[i] <= 'Z') {
				t.Fatalf("Node(%q) = %q: not lower-case ASCII", name, n)
			}
		}
		if Validate(name) == nil && len(n) > MaxNodeBytes {
			t.Fatalf("Validate accepted %q with a %d-byte node", name, len(n))
		}
	})
}

func BenchmarkNodeASCII(b *testing.B) {
	for b.Loop() {
		Node("Weekly Sync")
	}
}

func BenchmarkSanitizeUnguessable(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	for b.Loop() {
		Sanitize("Stream 42 — Live", true, secret)
	}
}
