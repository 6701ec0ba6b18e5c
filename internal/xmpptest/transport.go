package xmpptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// transport carries one XML stream.
type transport interface {
	// open starts (or restarts, after SASL) the stream to domain and
	// returns the stream features.
	open(ctx context.Context, domain string) (Node, error)
	send(ctx context.Context, raw string) error
	recv(ctx context.Context) (Node, error)
	// starttls upgrades the stream (TCP only; others return an error).
	starttls(ctx context.Context, cfg *tls.Config) error
	close() error
}

// ErrStreamClosed is returned when the server ended the stream.
var ErrStreamClosed = errors.New("the server closed the stream")

const maxStanza = 1 << 20

// ---- TCP (client-to-server stream, RFC 6120) ----

type tcpTransport struct {
	conn net.Conn
	r    *bufio.Reader
	dec  *xml.Decoder
}

func (t *tcpTransport) deadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		_ = t.conn.SetDeadline(d)
	} else {
		_ = t.conn.SetDeadline(time.Time{})
	}
}

func (t *tcpTransport) open(ctx context.Context, domain string) (Node, error) {
	t.deadline(ctx)
	hdr := "<?xml version='1.0'?><stream:stream to='" + attrEscape(domain) +
		"' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	if _, err := io.WriteString(t.conn, hdr); err != nil {
		return Node{}, fmt.Errorf("open stream: %w", err)
	}
	t.dec = xml.NewDecoder(t.r) // a ByteReader: the decoder buffers nothing itself, so it can be replaced after a restart
	for {
		tok, err := t.dec.Token()
		if err != nil {
			return Node{}, fmt.Errorf("open stream: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "stream" {
				return Node{}, fmt.Errorf("open stream: got <%s>, want <stream:stream>", se.Name.Local)
			}
			break
		}
	}
	n, err := t.recv(ctx)
	if err != nil {
		return Node{}, err
	}
	if n.XMLName.Local != "features" {
		return Node{}, fmt.Errorf("open stream: got %s, want stream features", n)
	}
	return n, nil
}

func (t *tcpTransport) send(ctx context.Context, raw string) error {
	t.deadline(ctx)
	_, err := io.WriteString(t.conn, raw)
	return err
}

func (t *tcpTransport) recv(ctx context.Context) (Node, error) {
	t.deadline(ctx)
	for {
		tok, err := t.dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Node{}, ErrStreamClosed
			}
			return Node{}, err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			var n Node
			if err := t.dec.DecodeElement(&n, &v); err != nil {
				return Node{}, err
			}
			if n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams" {
				return n, fmt.Errorf("%w: stream error %s", ErrStreamClosed, n)
			}
			return n, nil
		case xml.EndElement:
			return Node{}, ErrStreamClosed
		}
	}
}

func (t *tcpTransport) starttls(ctx context.Context, cfg *tls.Config) error {
	if err := t.send(ctx, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
		return err
	}
	n, err := t.recv(ctx)
	if err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if n.XMLName.Local != "proceed" {
		return fmt.Errorf("starttls: got %s", n)
	}
	tc := tls.Client(t.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("starttls handshake: %w", err)
	}
	t.conn = tc
	t.r = bufio.NewReader(tc)
	return nil
}

func (t *tcpTransport) close() error {
	_ = t.conn.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(t.conn, "</stream:stream>")
	return t.conn.Close()
}

// ---- websocket (RFC 7395) ----

type wsTransport struct {
	c *websocket.Conn
}

func (t *wsTransport) open(ctx context.Context, domain string) (Node, error) {
	if err := t.send(ctx, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='"+attrEscape(domain)+"' version='1.0'/>"); err != nil {
		return Node{}, fmt.Errorf("open: %w", err)
	}
	n, err := t.recv(ctx)
	if err != nil {
		return Node{}, fmt.Errorf("open: %w", err)
	}
	if n.XMLName.Local != "open" {
		return Node{}, fmt.Errorf("open: got %s", n)
	}
	f, err := t.recv(ctx)
	if err != nil {
		return Node{}, fmt.Errorf("open: %w", err)
	}
	if f.XMLName.Local != "features" {
		return Node{}, fmt.Errorf("open: got %s, want stream features", f)
	}
	return f, nil
}

func (t *wsTransport) send(ctx context.Context, raw string) error {
	return t.c.Write(ctx, websocket.MessageText, []byte(raw))
}

func (t *wsTransport) recv(ctx context.Context) (Node, error) {
	_, data, err := t.c.Read(ctx)
	if err != nil {
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return Node{}, fmt.Errorf("%w: %v", ErrStreamClosed, err)
		}
		return Node{}, err
	}
	var n Node
	if err := xml.Unmarshal(data, &n); err != nil {
		return Node{}, fmt.Errorf("websocket frame %q: %w", data, err)
	}
	if n.XMLName.Local == "close" || (n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams") {
		return n, fmt.Errorf("%w: %s", ErrStreamClosed, n)
	}
	return n, nil
}

func (t *wsTransport) starttls(context.Context, *tls.Config) error {
	return errors.New("starttls is not used over websocket")
}

func (t *wsTransport) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = t.send(ctx, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	return t.c.Close(websocket.StatusNormalClosure, "")
}

// ---- BOSH (XEP-0124/XEP-0206) ----

// boshTransport runs one request at a time: send posts the stanza and
// queues whatever the response carries; recv posts empty bodies (long
// polls bounded by wait) until something arrives.
type boshTransport struct {
	mu     sync.Mutex
	client *http.Client
	url    string
	domain string
	sid    string
	rid    int64
	queue  []Node
}

const boshWait = 2 // seconds a poll may be held

func (t *boshTransport) post(ctx context.Context, attrs, payload string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rid++
	body := "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='" +
		strconv.FormatInt(t.rid, 10) + "'"
	if t.sid != "" {
		body += " sid='" + attrEscape(t.sid) + "'"
	}
	body += " " + attrs + ">" + payload + "</body>"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("bosh request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4*maxStanza))
	if err != nil {
		return fmt.Errorf("bosh response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bosh: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data[:min(len(data), 300)]))
	}
	var n Node
	if err := xml.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("bosh response %q: %w", data[:min(len(data), 300)], err)
	}
	if n.XMLName.Local != "body" {
		return fmt.Errorf("bosh: got %s, want <body>", n)
	}
	if n.Attr("type") == "terminate" {
		return fmt.Errorf("%w: bosh terminate %s", ErrStreamClosed, n)
	}
	if sid := n.Attr("sid"); sid != "" && t.sid == "" {
		t.sid = sid
	}
	t.queue = append(t.queue, n.Nodes...)
	return nil
}

func (t *boshTransport) open(ctx context.Context, domain string) (Node, error) {
	t.domain = domain
	var attrs string
	if t.sid == "" {
		attrs = "content='text/xml; charset=utf-8' hold='1' wait='" + strconv.Itoa(boshWait) +
			"' to='" + attrEscape(domain) + "' ver='1.6' xmpp:version='1.0' xml:lang='en'"
	} else {
		attrs = "to='" + attrEscape(domain) + "' xmpp:restart='true' xml:lang='en'"
	}
	if err := t.post(ctx, attrs, ""); err != nil {
		return Node{}, fmt.Errorf("open: %w", err)
	}
	if t.sid == "" {
		return Node{}, errors.New("open: the BOSH session creation response had no sid")
	}
	n, err := t.recv(ctx)
	if err != nil {
		return Node{}, fmt.Errorf("open: %w", err)
	}
	if n.XMLName.Local != "features" {
		return Node{}, fmt.Errorf("open: got %s, want stream features", n)
	}
	return n, nil
}

func (t *boshTransport) send(ctx context.Context, raw string) error {
	return t.post(ctx, "", raw)
}

func (t *boshTransport) recv(ctx context.Context) (Node, error) {
	for {
		t.mu.Lock()
		if len(t.queue) > 0 {
			n := t.queue[0]
			t.queue = t.queue[1:]
			t.mu.Unlock()
			return n, nil
		}
		t.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return Node{}, err
		}
		if err := t.post(ctx, "", ""); err != nil {
			return Node{}, err
		}
	}
}

func (t *boshTransport) starttls(context.Context, *tls.Config) error {
	return errors.New("starttls is not used over BOSH")
}

func (t *boshTransport) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return t.post(ctx, "type='terminate'", "")
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }
