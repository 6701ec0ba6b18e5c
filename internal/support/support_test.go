package support

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/journal"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// readBundle returns the archive's files by name (without the top directory).
func readBundle(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode&0o077 != 0 {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
		c, _ := io.ReadAll(tr)
		_, name, _ := strings.Cut(h.Name, "/")
		out[name] = string(c)
	}
}

// forms is every way a secret may appear in a file or log.
func forms(s string) []string {
	b := []byte(s)
	f := append([]string{}, render.RedactionForms(s)...)
	return append(f, base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)), url.QueryEscape(s))
}

func TestBundleMasksEverySecretForm(t *testing.T) {
	const (
		appSecret = `9f2c41d7b8e05a63"f1c8d2e74b09a5c3\x`
		apiKey    = "b7e1f04c9a2d6835e0c4a9f1d7b3e52c"
		turn      = "d2a7c5f0e3b9164a8d2c7e1f4b9a6c3d"
		focus     = "focus-pw-5Rt8q2Lm"
		oldSecret = "0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a59"
		appToken  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoid2Vla2x5In0.Zm9yZ2VkLXNpZ25hdHVyZS1ieXRlcw"
	)
	secrets := []string{appSecret, apiKey, turn, focus}
	history := func(s string) string { return strings.ReplaceAll(s, oldSecret, Masked) }
	in := Input{
		Domain: "meet.example.com", SpecPath: "/etc/jitsi-agent/meet.hcl", Now: time.Unix(1_800_000_000, 0),
		Spec: []byte("auth \"jwt\" {\n  app_secret = \"" + strings.ReplaceAll(appSecret, `"`, `\"`) + "\"\n}\ntoken_api { key \"b\" { key = \"" + apiKey + "\" } }\n"),
		Files: []File{
			{Path: "/etc/prosody/conf.avail/meet.example.com.cfg.lua", Content: []byte("app_secret = " + luaQuote(appSecret) + "\nexternal_service_secret = \"" + turn + "\"\n")},
			{Path: "/etc/turnserver.conf", Content: []byte("static-auth-secret=" + turn + "\n")},
			{Path: "/srv/app/.env", Content: []byte("JITSI_APP_SECRET='" + appSecret + "'\nENCODED=" + base64.StdEncoding.EncodeToString([]byte(appSecret)) + "\nHEX=" + hex.EncodeToString([]byte(apiKey)) + "\n")},
			{Path: "/etc/jitsi/jicofo/jicofo.conf", Content: []byte("password = \"" + focus + "\"\nold = \"" + oldSecret + "\"\n")},
		},
		Versions: map[string]string{"prosody": "0.12.3-1", "coturn": "", "jitsi-agent": "dev"},
		Doctor:   []byte(`{"results":[{"id":"token.verify","seen":"` + apiKey + `"}]}`),
		Plan:     []byte("~ /srv/app/.env\n-JITSI_APP_SECRET=" + url.QueryEscape(appSecret) + "\n"),
		Journals: map[string][]string{
			"nginx.service":       {"GET /xmpp-websocket?room=weekly&token=" + appToken + " HTTP/1.1", "GET /weekly?jwt=" + appToken},
			"prosody.service":     {"Token " + appToken + " not allowed to join: weekly@conference.meet.example.com err: nil reason: Room and token mismatched"},
			"jitsi-agent.service": {"POST /api/v1/live/streams/s/join Authorization: Bearer " + apiKey, "focus password=" + focus},
		},
		JournalErrors: map[string]string{"coturn.service": "no entries"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, in, NewMasker(secrets, history)); err != nil {
		t.Fatal(err)
	}
	files := readBundle(t, buf.Bytes())
	all := strings.Join(func() []string {
		var v []string
		for _, c := range files {
			v = append(v, c)
		}
		return v
	}(), "\n")
	for _, s := range append(secrets, oldSecret, appToken) {
		for _, f := range forms(s) {
			if len(f) >= 6 && strings.Contains(all, f) {
				t.Errorf("the bundle holds a form of a secret: %q", f)
			}
		}
	}
	for _, leak := range []string{"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "Zm9yZ2VkLXNpZ25hdHVyZS1ieXRlcw"} {
		if strings.Contains(all, leak) {
			t.Errorf("a token part is in the bundle: %s", leak)
		}
	}
	for _, name := range []string{"README.txt", "spec/meet.hcl", "rendered/etc/prosody/conf.avail/meet.example.com.cfg.lua", "rendered/etc/turnserver.conf",
		"rendered/srv/app/.env", "versions.txt", "doctor.json", "plan.txt", "journal/nginx.service.log", "journal/prosody.service.log",
		"journal/jitsi-agent.service.log", "journal/coturn.service.log"} {
		if _, ok := files[name]; !ok {
			t.Errorf("no %s in %v", name, files)
		}
	}
	if !strings.Contains(files["versions.txt"], "prosody                0.12.3-1") || !strings.Contains(files["versions.txt"], "coturn                 not installed") {
		t.Errorf("versions.txt:\n%s", files["versions.txt"])
	}
	if !strings.Contains(files["journal/prosody.service.log"], "reason: Room and token mismatched") || !strings.Contains(files["journal/coturn.service.log"], "no entries") {
		t.Errorf("journals lost their content: %v", files)
	}
	if !strings.Contains(files["rendered/etc/turnserver.conf"], "static-auth-secret=(masked)") {
		t.Errorf("turnserver.conf: %s", files["rendered/etc/turnserver.conf"])
	}
}

func luaQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func TestJournalsAndVersions(t *testing.T) {
	l, e := Journals(t.Context(), journal.Recorded{"a.service": {"1", "2", "3"}}, []string{"a.service", "b.service"}, 2)
	if strings.Join(l["a.service"], ",") != "2,3" || len(l["b.service"]) != 0 || len(e) != 0 {
		t.Errorf("%v %v", l, e)
	}
	_, e = Journals(t.Context(), nil, []string{"a.service"}, 2)
	if e["a.service"] == "" {
		t.Error("no reason without journalctl")
	}
	v := Versions(t.Context(), fakeVersions{"prosody": "0.12.3"})
	if v["prosody"] != "0.12.3" || v["coturn"] != "" {
		t.Errorf("%v", v)
	}
}

type fakeVersions map[string]string

func (f fakeVersions) Version(_ context.Context, p string) string { return f[p] }
