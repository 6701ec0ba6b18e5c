package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/logging"

	"github.com/jitsi-agent/jitsi-agent/internal/joinapi"
	"github.com/jitsi-agent/jitsi-agent/internal/prosody"
	"github.com/jitsi-agent/jitsi-agent/internal/room"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/token"
)

// tokensFor loads the spec and prepares the token configuration.
func tokensFor(c *cli.Call, specPath string) (*spec.Deployment, *token.Tokens, bool) {
	stderr := c.Stderr
	d, ok := loadSpec(c, specPath)
	if !ok {
		fmt.Fprintf(stderr, "jitsi-agent: %s is not valid.\n", specPath)
		return nil, nil, false
	}
	cfg, err := token.FromDeployment(d)
	if err != nil {
		printError(stderr, err)
		return nil, nil, false
	}
	tk, err := token.New(cfg)
	if err != nil {
		printError(stderr, err)
		return nil, nil, false
	}
	return d, tk, true
}

func printRoomError(stderr io.Writer, err error) {
	printError(stderr, err)
	var re *room.Error
	if errors.As(err, &re) && re.Fix != "" {
		fmt.Fprintf(stderr, "Fix: %s\n", re.Fix)
	}
}

func runTokenMint(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	roomName, roomPattern, tenant, features, ttl, asURL := c.String("room"), c.String("room-pattern"), c.String("tenant"), c.String("features"), c.Duration("ttl"), c.Bool("url")
	user := token.User{ID: c.String("id"), Name: c.String("name"), Email: c.String("email"), Avatar: c.String("avatar"), Moderator: c.Bool("moderator")}
	pos := c.Args
	if roomName != "" && roomPattern != "" {
		return c.Usagef("give -room or -room-pattern, not both")
	}
	if roomName == "" && roomPattern == "" {
		return c.Usagef("-room is required (a room name, or '*' for every room; or -room-pattern)")
	}
	feat, err := token.ParseFeatures(features)
	if err != nil {
		fmt.Fprintf(stderr, "Error: --features: %v\n", err)
		return exitError
	}
	if len(feat) == 0 {
		feat = nil
	}
	if asURL && (roomName == room.Wildcard || roomPattern != "") {
		fmt.Fprintln(stderr, "Error: --url needs a concrete --room; a '*' or pattern token works in many rooms, so build the link yourself")
		return exitError
	}
	d, tk, ok := tokensFor(c, pos[0])
	if !ok {
		return exitError
	}
	tok, err := tk.Mint(token.MintRequest{Room: roomName, RoomPattern: roomPattern, Tenant: tenant, User: user, Features: feat, TTL: ttl})
	if err != nil {
		printRoomError(stderr, err)
		return exitError
	}
	if user.Moderator && d.Auth.Moderators != spec.ModeratorsToken {
		fmt.Fprintf(stderr, "Note: auth.moderators = %q: context.user.moderator is read only with moderators = %q (mod_token_affiliation).\n", d.Auth.Moderators, spec.ModeratorsToken)
	}
	if feat != nil {
		fmt.Fprintln(stderr, "Note: context.features replaces Jitsi's moderator defaults; features not listed count as not granted (screen-sharing excepted).")
	}
	if !asURL {
		fmt.Fprintln(stdout, tok)
		return exitOK
	}
	path := room.Node(roomName)
	if tenant != "" {
		path = tenant + "/" + path
	}
	fmt.Fprintf(stdout, "%s/%s?jwt=%s\n", d.ServerURL(), path, tok)
	return exitOK
}

// maxTokenInput bounds a token read from stdin: far above what any web
// server passes in a URL, small enough to hold in memory.
const maxTokenInput = 1 << 20

// tokenInput resolves the TOKEN argument: a token, "-" (stdin: one line, its
// end removed), or a meeting URL https://DOMAIN/[tenant/]room?jwt=TOKEN
// (which also names the room). Nothing else is trimmed: Prosody trims
// nothing, so white space in a token is part of what it judges.
func tokenInput(arg string, stdin io.Reader) (tok, roomName, tenant string, err error) {
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, maxTokenInput+1))
		if err != nil {
			return "", "", "", fmt.Errorf("read token from stdin: %w", err)
		}
		if len(b) > maxTokenInput {
			return "", "", "", fmt.Errorf("stdin holds more than %d bytes; a token is one line (Prosody's nginx front refuses far smaller ones)", maxTokenInput)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if strings.Contains(s, "\n") {
			return "", "", "", errors.New("stdin holds more than one line; pass one token")
		}
		arg = s
	}
	if !strings.HasPrefix(arg, "https://") && !strings.HasPrefix(arg, "http://") {
		return arg, "", "", nil
	}
	u, err := url.Parse(arg)
	if err != nil {
		return "", "", "", fmt.Errorf("meeting URL: %w", err)
	}
	tok = u.Query().Get("jwt")
	if tok == "" {
		return "", "", "", errors.New("the meeting URL has no ?jwt= parameter")
	}
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	switch len(parts) {
	case 1:
		roomName = parts[0]
	case 2:
		tenant, roomName = parts[0], parts[1]
	}
	return tok, roomName, tenant, nil
}

// inputHints explains token text that is probably not what the app sends.
func inputHints(tok string) []string {
	var out []string
	if strings.TrimSpace(tok) != tok {
		out = append(out, "the token has white space at its start or end; Prosody does not trim it (the text after the last '.' is the signature and must be base64url)")
	}
	if strings.Contains(strings.ToUpper(tok), "%2E") {
		out = append(out, "the token contains %2E: its dots are URL-encoded. Prosody URL-decodes ?token= once, so an app that sends this text in a query is judged decoded; verify the decoded token (or pass the meeting URL)")
	}
	return out
}

func runTokenVerify(c *cli.Call) int {
	stdout, stderr, stdin := c.Stdout, c.Stderr, c.Stdin
	roomName, tenant := c.String("room"), c.String("tenant")
	pos := c.Args
	tok, urlRoom, urlTenant, err := tokenInput(pos[1], stdin)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if roomName == "" {
		roomName, tenant = urlRoom, firstNonEmpty(tenant, urlTenant)
	}
	d, tk, ok := tokensFor(c, pos[0])
	if !ok {
		return exitError
	}
	if tenant != "" && !d.Tenants {
		fmt.Fprintf(stderr, "Error: tenant %q given, but the spec does not enable tenants (tenants = true)\n", tenant)
		return exitError
	}
	var target *token.Target
	if roomName != "" {
		if err := room.Validate(roomName); err != nil {
			printRoomError(stderr, err)
			return exitError
		}
		target = &token.Target{Room: roomName, Tenant: tenant}
	}
	if err := token.CheckSize(tok); err != nil {
		fmt.Fprintf(stderr, "Rejected before Prosody (nginx 414, or no answer from Prosody's HTTP server): %v\n", err)
		return exitError
	}
	cl, err := tk.Verify(tok, target)
	var rej *token.Rejection
	if errors.As(err, &rej) {
		where := "at login (mod_auth_token)"
		if rej.Stage == token.StageJoin {
			where = fmt.Sprintf("when joining room %q (mod_token_verification)", room.Node(roomName))
		}
		if rej.Crash {
			fmt.Fprintf(stderr, "Rejected %s: Jitsi's token code fails with the Lua error %q\n", where, rej.Reason)
		} else {
			fmt.Fprintf(stderr, "Rejected %s: %s\n", where, rej.Reason)
		}
		fmt.Fprintf(stderr, "Fix: %s\n", rej.Fix)
		for _, h := range inputHints(tok) {
			fmt.Fprintf(stderr, "Note: %s\n", h)
		}
		return exitError
	}
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "Accepted at login on %s (%s).\n", d.Domain, cl.Alg)
	if target != nil {
		where := room.Node(roomName)
		if tenant != "" {
			where = tenant + "/" + where
		}
		fmt.Fprintf(stdout, "Accepted in room %s.\n", where)
	} else {
		fmt.Fprintln(stdout, "Room not checked: pass --room (or a meeting URL) to check the MUC join too.")
	}
	for _, n := range cl.Notes {
		fmt.Fprintf(stdout, "Note: %s\n", n)
	}
	printClaims(stdout, cl)
	return exitOK
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// printClaims prints the claims Jitsi reads, and names ignored top-level ones.
func printClaims(w io.Writer, c *token.Claims) {
	p := c.Payload()
	for _, k := range []string{"iss", "aud", "sub", "room"} {
		if v, ok := p[k]; ok {
			fmt.Fprintf(w, "  %-5s %v\n", k+":", v)
		}
	}
	for _, k := range []string{"iat", "nbf", "exp"} {
		if f, ok := p[k].(float64); ok {
			at := time.Unix(int64(f), 0).UTC()
			fmt.Fprintf(w, "  %-5s %s (%s)\n", k+":", at.Format(time.RFC3339), relative(at, time.Now()))
		}
	}
	if ctx, ok := p["context"].(map[string]any); ok {
		if u, ok := ctx["user"].(map[string]any); ok {
			keys := make([]string, 0, len(u))
			for k := range u {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprint(w, "  user: ")
			for i, k := range keys {
				if i > 0 {
					fmt.Fprint(w, ", ")
				}
				fmt.Fprintf(w, "%s=%v", k, u[k])
			}
			fmt.Fprintln(w)
		}
		if f, ok := ctx["features"].(map[string]any); ok {
			fmt.Fprintf(w, "  features: %v\n", f)
		}
	}
	var ignored []string
	for _, k := range []string{"moderator", "audio", "video", "name", "email"} {
		if _, ok := p[k]; ok {
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(w, "Note: top-level %s ignored by Jitsi; put them in context.user (moderator, name, email); audio/video have no claim (use config.js startWithAudioMuted/startWithVideoMuted).\n",
			strings.Join(ignored, ", "))
	}
}

func runTokenServe(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	listen := c.String("listen")
	pos := c.Args
	d, tk, ok := tokensFor(c, pos[0])
	if !ok {
		return exitError
	}
	cfg, err := joinapi.FromDeployment(d)
	if err != nil {
		printError(stderr, err, "Fix: add a token_api block with at least one key to the spec.")
		return exitError
	}
	if listen != "" {
		cfg.Listen = listen
	}
	cfg.Rooms = joinapi.NewProsodyRooms(d, tk, prosody.System()) // meeting status and end
	logger, _, err := logging.New(logging.Options{Out: stderr, Format: logging.FormatText})
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	srv, err := joinapi.New(cfg, tk, logger)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "Serving the join endpoint on %s://%s%s (Ctrl-C to stop)\n", scheme, srv.Addr(), "/api/v1/live/streams/{stream_id}/join")
	if err := srv.ListenAndServe(ctx); err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintln(stdout, "Stopped.")
	return exitOK
}
