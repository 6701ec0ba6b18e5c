package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// canaryForms are the forms a leaked secret would take in output: raw,
// hex (both cases), and the parts of its base64 (standard and URL
// alphabets, every alignment) that depend on it alone.
func canaryForms(v string) []string {
	forms := []string{v, hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v)))}
	for shift := 0; shift < 3; shift++ {
		b := append([]byte(strings.Repeat("x", shift)), v...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString(b)
			forms = append(forms, e[4:len(e)-4])
		}
	}
	return forms
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestSecretCanary runs every command and error path with canary secrets
// and greps their whole output for the raw, hex and base64 forms: the JWT
// secret of a spec (also after switching auth away from JWT, when the old
// secret is only in the removed lines of a plan), a secret written inline
// under a misspelled attribute, a file() value shown in a diagnostic, and
// a template check that prints the staged secret-bearing file encoded.
func TestSecretCanary(t *testing.T) {
	canary := randomHex(t, 32)
	typo := randomHex(t, 24)
	fileSecret := "canary" + randomHex(t, 12)
	t.Setenv("JITSI_APP_SECRET", canary)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("env.tmpl", "JITSI_APP_ID={{ .AppID }}\nJITSI_APP_SECRET={{ shell .AppSecret }}\n")
	write("env2.tmpl", "# v2\nJITSI_APP_ID={{ .AppID }}\nJITSI_APP_SECRET={{ shell .AppSecret }}\n")
	write("plain.tmpl", "JITSI_SERVER_URL={{ .ServerURL }}\n")
	write("domain.txt", fileSecret+"\n")
	base := `domain = "meet.example.com"
meeting {
  max_participants = %s
}
`
	jwt := strings.Replace(base, "%s", "50", 1) + `auth "jwt" {
  app_id     = "canary-app"
  app_secret = env("JITSI_APP_SECRET")
}
template "env" {
  source      = "env.tmpl"
  destination = "/srv/app/.env"
}
`
	anon := strings.Replace(base, "%s", "60", 1) + `auth "anonymous" {}
template "env" {
  source      = "plain.tmpl"
  destination = "/srv/app/.env"
}
`
	specJWT := write("jwt.hcl", jwt)
	specAnon := write("anon.hcl", anon)
	specTypo := write("typo.hcl", strings.Replace(jwt, `app_id     = "canary-app"`, `app_id     = "canary-app"
  app_secrt  = "`+typo+`"`, 1))
	specFileDomain := write("filedomain.hcl", strings.Replace(jwt, `domain = "meet.example.com"`, `domain = file("domain.txt")`, 1))
	specCheck := write("check.hcl", strings.Replace(strings.Replace(jwt, `"env.tmpl"`, `"env2.tmpl"`, 1), `destination = "/srv/app/.env"`, `destination = "/srv/app/.env"
  check       = "cat {{.Path}}; base64 {{.Path}}; base64 -w0 {{.Path}} | base64 -w0; echo; xxd -p {{.Path}}; od -An -tx1 {{.Path}}; exit 1"`, 1))

	var all strings.Builder
	run := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, args...)
		all.WriteString(out + errs)
		if wantCode >= 0 && code != wantCode {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, wantCode, out, errs)
		}
		return out + errs
	}
	run(exitOK, "validate", specJWT)
	run(exitOK, "validate", specJWT, "--json")
	run(exitChanges, "plan", specJWT, "--root", root)
	run(exitChanges, "plan", specJWT, "--root", root, "--json")
	run(exitOK, "render", specJWT, "--out", filepath.Join(dir, "out"))
	run(exitOK, "apply", specJWT, "--root", root)
	run(exitOK, "plan", specJWT, "--root", root)
	run(exitOK, "fmt", "--check", specJWT)
	run(-1, "status", "--root", root)
	run(-1, "services", specJWT, "--root", root)
	run(-1, "certs", specJWT, "--root", root)
	run(-1, "doctor", specJWT, "--root", root, "--timeout", "1s")
	run(-1, "doctor", specJWT, "--root", root, "--timeout", "1s", "--json")
	tok := strings.TrimSpace(run(exitOK, "token", "mint", specJWT, "--room", "canary-room"))
	run(-1, "token", "verify", specJWT, tok)
	run(-1, "token", "verify", specJWT, tok+"x")
	// The auth switch: the old secret only survives in removed lines.
	p := run(exitChanges, "plan", specAnon, "--root", root)
	if !strings.Contains(p, "-JITSI_APP_SECRET=") {
		t.Errorf("the plan after the auth switch does not show the removed line:\n%s", p)
	}
	if !strings.Contains(p, "50") || !strings.Contains(p, "60") {
		t.Errorf("ordinary values are masked in the plan:\n%s", p)
	}
	run(exitChanges, "plan", specAnon, "--root", root, "--json")
	run(exitOK, "apply", specAnon, "--root", root)
	run(exitOK, "rollback", specAnon, "--root", root)
	run(exitChanges, "plan", specAnon, "--root", root)
	// Error paths.
	run(exitError, "validate", specTypo)
	run(exitError, "plan", specTypo, "--root", root)
	run(exitError, "validate", specFileDomain)
	run(exitError, "apply", specFileDomain, "--root", root)
	out := run(exitError, "apply", specCheck, "--root", root)
	if !strings.Contains(out, "check command") {
		t.Errorf("the failing check did not report:\n%s", out)
	}
	text := all.String()
	for name, v := range map[string]string{"app secret": canary, "misspelled attribute": typo, "file() value": fileSecret} {
		for _, f := range canaryForms(v) {
			if strings.Contains(text, f) {
				t.Errorf("the %s leaked as %q", name, f)
			}
		}
	}
}
