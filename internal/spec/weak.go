package spec

import (
	"regexp"
	"strings"
	"sync"
)

// GenerateSecretHint is how to make a secret that passes WeakSecret.
const GenerateSecretHint = "openssl rand -hex 32"

// placeholder matches texts people leave in place of a secret: template
// markers, "replace with", "change me", "your secret", examples.
// Short words match in one case only (base64 mixes cases at random).
var placeholder = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i:replace|change[-_ .]?me|placeholder|your[-_ .]?(app[-_ .]?|api[-_ .]?|turn[-_ .]?)?(secret|key|password|token)|secret[-_ .]?(from|here|store|goes)|example|insert[-_ .])|fixme|FIXME|dummy|DUMMY|^<.*>$|^__.*__$|^\$\{.*\}$|^\{\{.*\}\}$|^%.*%$`)
}) // compiled on first use, not at every start

// commonWords are dictionary and keyboard words that make up guessable
// secrets ("changeme-changeme", "jitsi-meet-secret-password").
var commonWords = strings.Fields(`
about above after again admin agent alpha apple audio backend banana bravo charlie change client cloud
company conference config default delta demo dragon echo football foxtrot hello hunter iloveyou jitsi
key letmein login master meet meeting monkey mypass network open pass passw password passwd private
prosody public qwerty qwertz asdf zxcv root sample secret secure server service session shadow simple
spring staging summer sunshine super system test token trustno1 turn user video welcome winter world
zoom hello123 abc123 azerty`)

// WeakSecret reports why s would be a guessable secret, or "" when it
// looks random. It never quotes the secret. Checked: known placeholders,
// a single character class (only digits, only lower or only upper case
// letters), repetition of a shorter unit, runs and sequences ("aaaaaaaa",
// "01234567", "abcdefgh"), few distinct characters, and text made mostly
// of dictionary words. Random values (openssl rand -hex 32, -base64 32)
// pass.
func WeakSecret(s string) string {
	if s == "" {
		return ""
	}
	if placeholder().MatchString(s) {
		return "it looks like placeholder text (a marker such as __...__, REPLACE_WITH, CHANGEME, EXAMPLE or YOUR_SECRET)"
	}
	var lower, upper, digit, other bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z':
			lower = true
		case 'A' <= c && c <= 'Z':
			upper = true
		case '0' <= c && c <= '9':
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	if classes == 1 && !other {
		return "it uses a single character class (only digits, or only lower- or upper-case letters)"
	}
	if p := period(s); p <= len(s)/2 {
		return "it repeats a short unit over and over"
	}
	if runOrSequence(s, 8) {
		return "it contains a run of one character or a sequence such as 01234567 or abcdefgh"
	}
	distinct := map[byte]bool{}
	for i := 0; i < len(s); i++ {
		distinct[s[i]] = true
	}
	if (len(s) >= 32 && len(distinct) < 8) || (len(s) >= 16 && len(distinct) < 6) {
		return "it uses very few distinct characters"
	}
	if wordCoverage(s) >= 0.5 {
		return "it is made mostly of dictionary words"
	}
	return ""
}

// period is the smallest p such that s is a prefix of its own repetition
// with period p ("abcabcab": 3).
func period(s string) int {
	// prefix function (KMP): the longest proper border gives the period
	pi := make([]int, len(s))
	for i := 1; i < len(s); i++ {
		k := pi[i-1]
		for k > 0 && s[i] != s[k] {
			k = pi[k-1]
		}
		if s[i] == s[k] {
			k++
		}
		pi[i] = k
	}
	return len(s) - pi[len(s)-1]
}

// runOrSequence reports a run of n equal bytes, or n bytes ascending or
// descending by one.
func runOrSequence(s string, n int) bool {
	same, up, down := 1, 1, 1
	for i := 1; i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		same, up, down = next(same, d == 0), next(up, d == 1), next(down, d == -1)
		if same >= n || up >= n || down >= n {
			return true
		}
	}
	return false
}

func next(run int, cont bool) int {
	if cont {
		return run + 1
	}
	return 1
}

// wordCoverage is the share of s covered by common words (case-insensitive,
// longest match first at each position).
func wordCoverage(s string) float64 {
	l := strings.ToLower(s)
	covered := 0
	for i := 0; i < len(l); {
		best := 0
		for _, w := range commonWords {
			if len(w) > best && strings.HasPrefix(l[i:], w) {
				best = len(w)
			}
		}
		if best >= 3 {
			covered += best
			i += best
		} else {
			i++
		}
	}
	return float64(covered) / float64(len(s))
}
