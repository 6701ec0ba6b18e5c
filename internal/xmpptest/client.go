package xmpptest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// Client is a logged-in XMPP session.
type Client struct {
	t      transport
	domain string
	// JID is the full JID the server bound.
	JID string

	mu      sync.Mutex
	nextID  int
	pending []Node // stanzas received while waiting for something else
}

// Credentials choose the SASL mechanism: an empty User means ANONYMOUS
// (with JWT auth, Prosody's mod_auth_token takes the token from the URL).
type Credentials struct {
	User, Password string
}

// DialFunc opens a network connection (e.g. into a test's network namespace).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// BOSH logs in over BOSH at endpoint (e.g. "https://meet.test/http-bind?token=...").
func BOSH(ctx context.Context, hc *http.Client, endpoint, domain string, cred Credentials) (*Client, error) {
	return login(ctx, &boshTransport{client: hc, url: endpoint}, domain, cred, nil)
}

// Websocket logs in over a websocket at endpoint (e.g.
// "wss://meet.test/xmpp-websocket?room=r&token=...").
func Websocket(ctx context.Context, hc *http.Client, endpoint, domain string, cred Credentials) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	origin := "https://" + u.Host
	c, resp, err := websocket.Dial(ctx, endpoint, &websocket.DialOptions{
		HTTPClient:   hc,
		Subprotocols: []string{"xmpp"},
		HTTPHeader:   http.Header{"Origin": {origin}},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket %s: HTTP %d: %w", u.Path, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("websocket %s: %w", u.Path, err)
	}
	c.SetReadLimit(maxStanza)
	return login(ctx, &wsTransport{c: c}, domain, cred, nil)
}

// TCP logs in on a client-to-server port with STARTTLS (required: a server
// that does not offer it is an error) verified by tlsConf.
func TCP(ctx context.Context, dial DialFunc, addr, domain string, cred Credentials, tlsConf *tls.Config) (*Client, error) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	if tlsConf == nil {
		return nil, errors.New("TCP needs a tls.Config (STARTTLS is required)")
	}
	return login(ctx, &tcpTransport{conn: conn, r: newReader(conn)}, domain, cred, tlsConf)
}

func login(ctx context.Context, t transport, domain string, cred Credentials, tlsConf *tls.Config) (c *Client, err error) {
	defer func() {
		if err != nil {
			_ = t.close()
		}
	}()
	f, err := t.open(ctx, domain)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		if _, ok := f.Child("starttls"); !ok {
			return nil, fmt.Errorf("the server offers no STARTTLS on %s: %s", domain, f)
		}
		if err := t.starttls(ctx, tlsConf); err != nil {
			return nil, err
		}
		if f, err = t.open(ctx, domain); err != nil {
			return nil, err
		}
	}
	mechs, ok := f.Child("mechanisms")
	if !ok {
		return nil, fmt.Errorf("no SASL mechanisms offered: %s", f)
	}
	var offered []string
	for _, m := range mechs.Children("mechanism") {
		offered = append(offered, strings.TrimSpace(m.Text))
	}
	mech, initial := "ANONYMOUS", ""
	if cred.User != "" {
		mech = "PLAIN"
		initial = base64.StdEncoding.EncodeToString([]byte("\x00" + cred.User + "\x00" + cred.Password))
	}
	if !contains(offered, mech) {
		return nil, fmt.Errorf("SASL %s not offered (offered: %s)", mech, strings.Join(offered, " "))
	}
	if initial == "" {
		initial = "="
	}
	if err := t.send(ctx, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='"+mech+"'>"+initial+"</auth>"); err != nil {
		return nil, fmt.Errorf("sasl: %w", err)
	}
	n, err := t.recv(ctx)
	if err != nil {
		return nil, fmt.Errorf("sasl: %w", err)
	}
	if n.XMLName.Local != "success" {
		return nil, &AuthError{Answer: n}
	}
	f, err = t.open(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("after sasl: %w", err)
	}
	if _, ok := f.Child("bind"); !ok {
		return nil, fmt.Errorf("no resource binding offered: %s", f)
	}
	c = &Client{t: t, domain: domain}
	res, err := c.iq(ctx, "set", "", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")
	if err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if b, ok := res.Child("bind"); ok {
		if j, ok := b.Child("jid"); ok {
			c.JID = strings.TrimSpace(j.Text)
		}
	}
	if c.JID == "" {
		return nil, fmt.Errorf("bind: no jid in %s", res)
	}
	return c, nil
}

// AuthError is a SASL failure.
type AuthError struct{ Answer Node }

func (e *AuthError) Error() string {
	cond, text := "", ""
	for _, c := range e.Answer.Nodes {
		if c.XMLName.Local == "text" {
			text = strings.TrimSpace(c.Text)
		} else {
			cond = c.XMLName.Local
		}
	}
	return fmt.Sprintf("sasl failure %s %s", cond, text)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (c *Client) id() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return "t" + strconv.Itoa(c.nextID)
}

// Send writes raw XML.
func (c *Client) Send(ctx context.Context, raw string) error { return c.t.send(ctx, raw) }

// Await returns the next stanza matching match (others are kept for later
// calls), bounded by ctx.
func (c *Client) Await(ctx context.Context, match func(Node) bool) (Node, error) {
	return c.next(ctx, match)
}

// next returns the next stanza matching match; others are kept for later.
func (c *Client) next(ctx context.Context, match func(Node) bool) (Node, error) {
	c.mu.Lock()
	for i, n := range c.pending {
		if match(n) {
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			c.mu.Unlock()
			return n, nil
		}
	}
	c.mu.Unlock()
	for {
		n, err := c.t.recv(ctx)
		if err != nil {
			return Node{}, err
		}
		if match(n) {
			return n, nil
		}
		c.mu.Lock()
		if len(c.pending) < 1000 {
			c.pending = append(c.pending, n)
		}
		c.mu.Unlock()
	}
}

// iq sends an IQ and waits for its result; an error answer is a *StanzaError.
func (c *Client) iq(ctx context.Context, typ, to, payload string) (Node, error) {
	id := c.id()
	raw := "<iq xmlns='jabber:client' type='" + typ + "' id='" + id + "'"
	if to != "" {
		raw += " to='" + attrEscape(to) + "'"
	}
	raw += ">" + payload + "</iq>"
	if err := c.t.send(ctx, raw); err != nil {
		return Node{}, err
	}
	n, err := c.next(ctx, func(n Node) bool { return n.XMLName.Local == "iq" && n.Attr("id") == id })
	if err != nil {
		return Node{}, err
	}
	if n.Attr("type") == "error" {
		return n, stanzaError(n)
	}
	return n, nil
}

// IQ sends an IQ of type get or set with payload and returns the result.
func (c *Client) IQ(ctx context.Context, typ, to, payload string) (Node, error) {
	return c.iq(ctx, typ, to, payload)
}

// Ping sends a XEP-0199 ping to the server: a dropped session fails here.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.iq(ctx, "get", c.domain, "<ping xmlns='urn:xmpp:ping'/>")
	return err
}

// JoinMUC enters room (a bare room JID) as nick and waits for the room's
// answer: nil once the server reflects our own presence (status 110), a
// *StanzaError when it refuses.
func (c *Client) JoinMUC(ctx context.Context, room, nick string) error {
	full := room + "/" + nick
	raw := "<presence xmlns='jabber:client' to='" + attrEscape(full) + "'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
	if err := c.t.send(ctx, raw); err != nil {
		return err
	}
	for {
		n, err := c.next(ctx, func(n Node) bool {
			return n.XMLName.Local == "presence" && strings.EqualFold(bare(n.Attr("from")), room)
		})
		if err != nil {
			return fmt.Errorf("join %s: %w", room, err)
		}
		if n.Attr("type") == "error" {
			return stanzaError(n)
		}
		if isSelfPresence(n) {
			return nil
		}
	}
}

// LeaveMUC leaves the room.
func (c *Client) LeaveMUC(ctx context.Context, room, nick string) error {
	return c.t.send(ctx, "<presence xmlns='jabber:client' type='unavailable' to='"+attrEscape(room+"/"+nick)+"'/>")
}

func isSelfPresence(n Node) bool {
	for _, x := range n.Children("x") {
		for _, s := range x.Children("status") {
			if s.Attr("code") == "110" {
				return true
			}
		}
	}
	return false
}

func bare(jid string) string {
	if i := strings.IndexByte(jid, '/'); i >= 0 {
		return jid[:i]
	}
	return jid
}

// Service is one XEP-0215 external service.
type Service struct {
	Type, Host, Transport string
	Port                  int
	Username, Password    string
}

// ExternalServices asks the server for STUN/TURN services (XEP-0215).
func (c *Client) ExternalServices(ctx context.Context) ([]Service, error) {
	res, err := c.iq(ctx, "get", c.domain, "<services xmlns='urn:xmpp:extdisco:2'/>")
	if err != nil {
		return nil, err
	}
	sv, ok := res.Child("services")
	if !ok {
		return nil, fmt.Errorf("no <services> in %s", res)
	}
	var out []Service
	for _, s := range sv.Children("service") {
		port, _ := strconv.Atoi(s.Attr("port"))
		out = append(out, Service{Type: s.Attr("type"), Host: s.Attr("host"), Transport: s.Attr("transport"),
			Port: port, Username: s.Attr("username"), Password: s.Attr("password")})
	}
	return out, nil
}

// Close ends the session.
func (c *Client) Close() error { return c.t.close() }
