package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signedToken signs payload with the example spec's secret (cliSecret).
func signedToken(t *testing.T, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte(cliSecret))
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

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
	var o, e bytes.Buffer
	if code := run([]string{"token", "verify", spec, "-"}, strings.NewReader("not.a\n"), &o, &e); code != exitError || !strings.Contains(e.String(), "Invalid token") {
		t.Fatalf("stdin: %d %s", code, e.String())
	}

	// No trimming: Prosody judges the exact text.
	code, _, errs = runCLI(t, "token", "verify", spec, tok+" ")
	if code != exitError || !strings.Contains(errs, "Invalid signature") || !strings.Contains(errs, "white space") {
		t.Fatalf("trailing space: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "token", "verify", spec, strings.ReplaceAll(tok, ".", "%2E"))
	if code != exitError || !strings.Contains(errs, "Invalid token") || !strings.Contains(errs, "%2E") {
		t.Fatalf("%%2E: %d %s", code, errs)
	}
	// stdin: the whole line, beyond 64 KiB, is read; more than 1 MiB is refused.
	big := signedToken(t, `{"iss":"my-app-id","aud":"my-app-id","sub":"meet.example.com","room":"r","exp":9999999999,"pad":"`+
		strings.Repeat("x", 100<<10)+`"}`)
	o.Reset()
	e.Reset()
	if code := run([]string{"token", "verify", spec, "-"}, strings.NewReader(big+"\n"), &o, &e); code != exitError ||
		!strings.Contains(e.String(), fmt.Sprintf("the token is %d bytes", len(big))) {
		t.Fatalf("100 KiB token on stdin (read whole, refused for its size): %d %s", code, e.String())
	}
	// Tokens must fit in a URL: user fields are bounded.
	if code, _, errs := runCLI(t, "token", "mint", spec, "--room", "r", "--name", strings.Repeat("n", 20000)); code != exitError || !strings.Contains(errs, "context.user.name is 20000 bytes") {
		t.Fatalf("20,000-character name: %d %s", code, errs)
	}
	e.Reset()
	if code := run([]string{"token", "verify", spec, "-"}, strings.NewReader(strings.Repeat("a", 1<<20+10)), &o, &e); code != exitError || !strings.Contains(e.String(), "more than") {
		t.Fatalf("2 MiB stdin: %d %s", code, e.String())
	}
	// Regex room claims (Lua patterns).
	code, out, errs = runCLI(t, "token", "mint", spec, "--room-pattern", "^team%-%d+$")
	if code != exitOK {
		t.Fatalf("mint --room-pattern: %d %s", code, errs)
	}
	pat := strings.TrimSpace(out)
	if code, out, errs := runCLI(t, "token", "verify", spec, pat, "--room", "team-42"); code != exitOK || !strings.Contains(out, "Accepted in room team-42") {
		t.Fatalf("pattern token in team-42: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "token", "verify", spec, pat, "--room", "team-x"); code != exitError || !strings.Contains(errs, "Room name cannot be matched") {
		t.Fatalf("pattern token in team-x: %d %s", code, errs)
	}

	for _, bad := range [][]string{
		{"token", "mint", spec, "--room-pattern", "["},
		{"token", "mint", spec, "--room-pattern", "a", "--room", "a"},
		{"token", "mint", spec, "--room-pattern", "a.*", "--url"},
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
}

// TestTokenServeOnExample: the example spec is the app team's complete
// server; `token serve` runs its join endpoint, which answers as the guide's
// §6 says.
func TestTokenServeOnExample(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	bin := agentBinary(t)
	dir := t.TempDir()
	copyTree(t, "../../examples", dir)
	specPath := filepath.Join(dir, "meet.hcl")
	addr := joinListen(t, specPath)
	cmd := exec.Command(bin, "token", "serve", specPath)
	cmd.Env = append(os.Environ(), "JITSI_APP_SECRET="+cliSecret, "JOIN_API_KEY="+cliAPIKey)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(runBound); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/live/streams/stream-7/join", strings.NewReader(`{"identity":"u1","name":"Ada","is_host":true}`))
		req.Header.Set("Authorization", "Bearer "+cliAPIKey)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("token serve never answered: %v\n%s", err, logs.String())
	}
	defer resp.Body.Close()
	var out struct {
		Token, URL, RoomName, MeetingURL string
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &struct {
		Token      *string `json:"token"`
		URL        *string `json:"url"`
		RoomName   *string `json:"room_name"`
		MeetingURL *string `json:"meeting_url"`
	}{&out.Token, &out.URL, &out.RoomName, &out.MeetingURL}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("join: %d %s", resp.StatusCode, b)
	}
	if out.URL != "https://meet.example.com" || out.MeetingURL != out.URL+"/"+out.RoomName || !strings.HasPrefix(out.RoomName, "stream-7-") {
		t.Errorf("answer %s", b)
	}
	if code, o, e := runCLI(t, "token", "verify", specPath, out.Token, "--room", out.RoomName); code != exitOK || !strings.Contains(o, "moderator=true") {
		t.Errorf("the endpoint's token: %d %s %s", code, o, e)
	}
}
