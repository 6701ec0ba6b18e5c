package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestTokenMintVerify(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	spec := "../../examples/meet.hcl"
	code, out, errs := runCLI(t, "token", "mint", spec, "--room", "Weekly Sync", "--name", "Ada", "--id", "u1", "--moderator",
		"--features", "screen-sharing=false,recording=true", "--ttl", "30m")
	if code != exitOK {
		t.Fatalf("mint: %d %s", code, errs)
	}
	tok := strings.TrimSpace(out)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("mint printed %q", out)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p["room"] != "weekly%20sync" || p["iss"] != "my-app-id" || p["sub"] != "meet.example.com" || p["exp"].(float64)-p["iat"].(float64) != 1800 {
		t.Errorf("payload %v", p)
	}
	if strings.Contains(out+errs, cliSecret) {
		t.Fatal("secret printed")
	}

	code, out, errs = runCLI(t, "token", "verify", spec, tok, "--room", "weekly sync")
	if code != exitOK || !strings.Contains(out, "Accepted in room weekly%20sync") || strings.Contains(out, tok) {
		t.Fatalf("verify: %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = runCLI(t, "token", "verify", spec, tok, "--room", "other")
	if code != exitError || !strings.Contains(errs, "Room and token mismatched") || !strings.Contains(errs, "Fix:") {
		t.Fatalf("wrong room: %d %s", code, errs)
	}
	// A meeting URL names the room itself.
	code, out, errs = runCLI(t, "token", "mint", spec, "--room", "täst", "--url")
	if code != exitOK || !strings.HasPrefix(out, "https://meet.example.com/t%c3%a4st?jwt=") {
		t.Fatalf("mint --url: %d %q %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "token", "verify", spec, strings.TrimSpace(out))
	if code != exitOK || !strings.Contains(out, "Accepted in room t%c3%a4st") {
		t.Fatalf("verify URL: %d %s %s", code, out, errs)
	}

	// Rejections speak Prosody's words and never echo the token.
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	code, out, errs = runCLI(t, "token", "verify", spec, tampered)
	if code != exitError || !strings.Contains(errs, "Invalid signature") || strings.Contains(out+errs, tampered) {
		t.Fatalf("tampered: %d %s %s", code, out, errs)
	}
	var stdin bytes.Buffer
	stdin.WriteString("not.a\n")
	var o, e bytes.Buffer
	if code := runTokenVerify([]string{spec, "-"}, &o, &e, &stdin); code != exitError || !strings.Contains(e.String(), "Invalid token") {
		t.Fatalf("stdin: %d %s", code, e.String())
	}

	for _, bad := range [][]string{
		{"token", "mint", spec},                        // no --room
		{"token", "mint", spec, "--room", "config.js"}, // reserved
		{"token", "mint", spec, "--room", "r", "--features", "screensharing=false"},
		{"token", "mint", spec, "--room", "*", "--url"},
		{"token", "mint", spec, "--room", "r", "--tenant", "acme"}, // tenants off in the example
		{"token", "frobnicate"},
	} {
		if code, _, errs := runCLI(t, bad...); code != exitError || errs == "" {
			t.Errorf("%v: code %d, stderr %q", bad, code, errs)
		}
	}
	if code, _, errs := runCLI(t, "token", "serve", spec); code != exitError || !strings.Contains(errs, "token_api") {
		t.Errorf("serve without token_api: %d %s", code, errs)
	}
}
