package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

const jwtSecret = "s3cr3t-jwt-signing-key-0123456789"
const turnSecret = "turn-shared-secret-abcdef"

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func newTest(t *testing.T, format string, journald bool) (*logrus.Logger, *Redactor, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, r, err := New(Options{Format: format, Out: &buf, Journal: &journald, Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	return l, r, &buf
}

func TestSecretValuesNeverReachOutput(t *testing.T) {
	for _, tc := range []struct {
		format   string
		journald bool
	}{{FormatText, false}, {FormatJSON, false}, {FormatAuto, true}} {
		t.Run(fmt.Sprintf("%s-journal=%v", tc.format, tc.journald), func(t *testing.T) {
			l, r, buf := newTest(t, tc.format, tc.journald)
			r.Add(jwtSecret, turnSecret)
			fields := logrus.Fields{
				"app_secret":    "literal-but-named-secret",
				"TURN_Password": "pw-by-name-only",
				"api_key":       42,
				"file":          "/etc/prosody/conf.d/x.cfg.lua",
				"detail":        "line contains " + jwtSecret + " inline",
				"list":          []string{"ok", turnSecret},
				"stringer":      stringer{"value=" + turnSecret},
				"count":         3,
			}
			l.WithFields(fields).WithError(fmt.Errorf("render: %w", errors.New("bad value "+jwtSecret))).
				Errorf("apply failed for secret %s and %s", jwtSecret, turnSecret)
			l.WithField("msg_with_secret", turnSecret).Debug(turnSecret)
			out := buf.String()
			for _, s := range []string{jwtSecret, turnSecret, "literal-but-named-secret", "pw-by-name-only"} {
				if strings.Contains(out, s) {
					t.Fatalf("secret %q reached the output:\n%s", s, out)
				}
			}
			for _, s := range []string{"/etc/prosody/conf.d/x.cfg.lua", Placeholder, "apply failed for secret"} {
				if !strings.Contains(out, s) {
					t.Fatalf("output lacks %q:\n%s", s, out)
				}
			}
			// The caller's fields are untouched.
			if fields["detail"] != "line contains "+jwtSecret+" inline" {
				t.Fatal("the hook modified the caller's map")
			}
		})
	}
}

func TestRedactorLongestFirstAndShortValues(t *testing.T) {
	r := NewRedactor()
	r.Add("abc", "password123", "password123-extended", "")
	got := r.Redact("x password123-extended y password123 abc")
	if got != "x (sensitive) y (sensitive) abc" {
		t.Fatalf("got %q", got)
	}
	var nilR *Redactor
	if nilR.Redact("x") != "x" {
		t.Fatal("nil redactor changed text")
	}
}

func TestJournalFormat(t *testing.T) {
	l, _, buf := newTest(t, FormatAuto, true)
	l.WithField("unit", "prosody.service").Error("reload failed")
	l.Warn("drift")
	l.Info("applied")
	l.Debug("details")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("lines: %q", lines)
	}
	for i, want := range []string{"<3>", "<4>", "<6>", "<7>"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Fatalf("line %d = %q, want prefix %s", i, lines[i], want)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[i], want)), &m); err != nil {
			t.Fatalf("line %d is not JSON after the prefix: %v", i, err)
		}
		if _, ok := m["time"]; ok {
			t.Fatal("journald lines carry a timestamp")
		}
		if _, ok := m["message"]; !ok {
			t.Fatalf("no message key: %v", m)
		}
	}
}

func TestTerminalIsText(t *testing.T) {
	l, _, buf := newTest(t, FormatAuto, false)
	l.WithField("file", "/etc/x").Info("applied")
	out := buf.String()
	if strings.HasPrefix(out, "<") || strings.HasPrefix(out, "{") || !strings.Contains(out, `msg=applied`) {
		t.Fatalf("not text: %q", out)
	}
}

func TestBadOptions(t *testing.T) {
	if _, _, err := New(Options{Level: "loud"}); err == nil {
		t.Fatal("bad level accepted")
	}
	if _, _, err := New(Options{Format: "xml"}); err == nil {
		t.Fatal("bad format accepted")
	}
}

func TestSensitiveKey(t *testing.T) {
	for k, want := range map[string]bool{
		"jwt_secret": true, "Password": true, "api_token": true, "eab_hmac_key": true,
		"file": false, "unit": false, "domain": false,
	} {
		if SensitiveKey(k) != want {
			t.Errorf("SensitiveKey(%q) = %v", k, !want)
		}
	}
}

func TestCLIFormat(t *testing.T) {
	var b bytes.Buffer
	l, red := CLI(&b)
	red.Add("hunter2-secret-value")
	l.Infof("reload %s: ok", "prosody.service")
	l.WithField("unit", "jicofo.service").Warn("password hunter2-secret-value rejected")
	l.Debug("not shown")
	want := "jitsi-agent: reload prosody.service: ok\njitsi-agent: warning: password (sensitive) rejected unit=jicofo.service\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}
