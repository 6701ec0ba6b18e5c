package probe

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	nsStream = "http://etherx.jabber.org/streams"
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL   = "urn:ietf:params:xml:ns:xmpp-sasl"
)

// c2sStartTLS opens a client stream to host on Prosody's c2s port, checks
// that STARTTLS is offered, upgrades, and checks that the encrypted stream
// offers SASL: what jicofo and the videobridge do before they log in.
func c2sStartTLS(ctx context.Context, addr, host string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("Prosody's c2s port does not answer: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(defaultTimeout))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	feats, err := openStream(conn, host)
	if err != nil {
		return err
	}
	if !feats.has(nsTLS, "starttls") {
		return fmt.Errorf("c2s stream to %s offers no STARTTLS (features: %s): Prosody has no certificate for %s", host, feats, host)
	}
	if _, err := io.WriteString(conn, "<starttls xmlns='"+nsTLS+"'/>"); err != nil {
		return err
	}
	el, err := feats.dec.next()
	if err != nil {
		return fmt.Errorf("after <starttls/>: %w", err)
	}
	if el.Name.Local != "proceed" {
		return fmt.Errorf("Prosody answered <%s/> to <starttls/> for %s", el.Name.Local, host)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true}) //nolint:gosec // loopback probe; jicofo/jvb trust is doctor's concern
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake on c2s for %s failed: %w", host, err)
	}
	feats, err = openStream(tc, host)
	if err != nil {
		return fmt.Errorf("after STARTTLS: %w", err)
	}
	if !feats.has(nsSASL, "mechanisms") {
		return fmt.Errorf("encrypted c2s stream to %s offers no SASL mechanisms (features: %s)", host, feats)
	}
	_, _ = io.WriteString(tc, "</stream:stream>")
	return nil
}

// features are the children of <stream:features/>.
type features struct {
	names []xml.Name
	dec   *decoder
}

func (f features) has(ns, local string) bool {
	for _, n := range f.names {
		if n.Space == ns && n.Local == local {
			return true
		}
	}
	return false
}

func (f features) String() string {
	if len(f.names) == 0 {
		return "none"
	}
	s := ""
	for i, n := range f.names {
		if i > 0 {
			s += ", "
		}
		s += n.Local
	}
	return s
}

// openStream sends a stream header and reads the server's header and
// features (a stream error becomes an error naming its condition).
func openStream(conn io.ReadWriter, host string) (features, error) {
	hdr := "<?xml version='1.0'?><stream:stream to='" + xmlAttr(host) + "' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='" + nsStream + "'>"
	if _, err := io.WriteString(conn, hdr); err != nil {
		return features{}, fmt.Errorf("writing the stream header: %w", err)
	}
	dec := &decoder{xml.NewDecoder(conn)}
	var f features
	f.dec = dec
	// <stream:stream ...> opens and stays open.
	for {
		tok, err := dec.Token()
		if err != nil {
			return f, fmt.Errorf("reading the stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Space != nsStream || se.Name.Local != "stream" {
				return f, fmt.Errorf("expected <stream:stream>, got <%s>", se.Name.Local)
			}
			break
		}
	}
	el, err := dec.next()
	if err != nil {
		return f, err
	}
	if el.Name.Space == nsStream && el.Name.Local == "error" {
		return f, fmt.Errorf("Prosody closed the stream to %s: %s", host, el.children())
	}
	if el.Name.Space != nsStream || el.Name.Local != "features" {
		return f, fmt.Errorf("expected <stream:features>, got <%s>", el.Name.Local)
	}
	for _, c := range el.Kids {
		f.names = append(f.names, c.Name)
	}
	return f, nil
}

// element is a parsed child element (names only, one level of children).
type element struct {
	Name xml.Name
	Kids []element
}

func (e element) children() string {
	if len(e.Kids) == 0 {
		return "no condition"
	}
	s := ""
	for i, k := range e.Kids {
		if i > 0 {
			s += ", "
		}
		s += k.Name.Local
	}
	return s
}

type decoder struct{ *xml.Decoder }

// next reads the next complete top-level element of the stream.
func (d *decoder) next() (element, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return element{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return d.rest(t, 0)
		case xml.EndElement:
			return element{}, errors.New("Prosody closed the stream")
		}
	}
}

func (d *decoder) rest(start xml.StartElement, depth int) (element, error) {
	if depth > 16 {
		return element{}, errors.New("XML nested too deeply")
	}
	e := element{Name: start.Name}
	for {
		tok, err := d.Token()
		if err != nil {
			return e, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			k, err := d.rest(t, depth+1)
			if err != nil {
				return e, err
			}
			if len(e.Kids) < 64 {
				e.Kids = append(e.Kids, k)
			}
		case xml.EndElement:
			return e, nil
		}
	}
}
