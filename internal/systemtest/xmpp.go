package systemtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/xmpptest"
)

// Token mints a JWT for room with the agent's own `token mint` (so it is
// exactly what the app's backend gets). Extra args go to `token mint`.
func (e *Env) Token(room string, extra ...string) string {
	e.T.Helper()
	out, code := e.Agent(append([]string{"token", "mint", SpecPath, "--room", room}, extra...)...)
	if code != 0 {
		e.T.Fatalf("token mint exited %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// BOSH logs in through nginx's /http-bind with token (SASL ANONYMOUS, the
// token in the URL as Jitsi's web client sends it); "" logs in without one.
func (e *Env) BOSH(ctx context.Context, domain, token string) (*xmpptest.Client, error) {
	u := "https://" + e.Domain + "/http-bind"
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return xmpptest.BOSH(ctx, e.HTTPClient(), u, domain, xmpptest.Credentials{})
}

// Websocket logs in through nginx's /xmpp-websocket with token.
func (e *Env) Websocket(ctx context.Context, domain, room, token string) (*xmpptest.Client, error) {
	q := url.Values{}
	if room != "" {
		q.Set("room", room)
	}
	if token != "" {
		q.Set("token", token)
	}
	u := "wss://" + e.Domain + "/xmpp-websocket"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return xmpptest.Websocket(ctx, e.HTTPClient(), u, domain, xmpptest.Credentials{})
}

// AuthCAFile is where the agent keeps the internal CA that signs the
// certificates of Prosody's internal names (auth.DOMAIN...).
const AuthCAFile = StateDir + "/internal-ca/ca.crt"

// Component logs in as user ("focus" or "jvb") on auth.DOMAIN at the c2s
// port with STARTTLS, verifying Prosody's certificate for auth.DOMAIN
// against the agent's internal CA (what jicofo and the videobridge trust),
// with the password the agent generated.
func (e *Env) Component(ctx context.Context, user string) (*xmpptest.Client, error) {
	e.T.Helper()
	auth := "auth." + e.Domain
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(e.Path(AuthCAFile)); err == nil {
		pool.AppendCertsFromPEM(pem)
	} else {
		e.T.Fatalf("internal CA: %v", err)
	}
	return xmpptest.TCP(ctx, e.Dial, "127.0.0.1:5222", auth,
		xmpptest.Credentials{User: user, Password: e.Secret(user + "_password")},
		&tls.Config{ServerName: auth, RootCAs: pool, MinVersion: tls.VersionTLS12})
}

// MUC is the conference MUC JID of room.
func (e *Env) MUC(room string) string { return room + "@conference." + e.Domain }
