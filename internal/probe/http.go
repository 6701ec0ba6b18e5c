package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// maxBody bounds what a probe reads from a response.
const maxBody = 4 << 20

// client is an HTTP client that always connects to addr, whatever the
// URL's host: SNI and Host stay the deployment's name, as for a browser
// that resolved it to this host. Certificates are not verified (before
// the first ACME issuance nginx serves a placeholder).
func client(addr, serverName string) *http.Client {
	d := &net.Dialer{}
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:   &tls.Config{ServerName: serverName, InsecureSkipVerify: true}, //nolint:gosec // loopback probe of our own service
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// configJS checks that nginx serves config.js under the deployment's name.
func configJS(ctx context.Context, addr, domain, url string, want []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client(addr, domain).Do(req)
	if err != nil {
		return fmt.Errorf("nginx does not answer: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading config.js: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /config.js answered %s", resp.Status)
	}
	if len(body) == 0 {
		return errors.New("config.js is empty")
	}
	if want != nil && !bytes.Equal(body, want) {
		return fmt.Errorf("config.js differs from the rendered file (%d bytes served, %d rendered): nginx serves another configuration", len(body), len(want))
	}
	return nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// boshBody is the part of a BOSH <body/> wrapper the probe reads.
type boshBody struct {
	XMLName   xml.Name `xml:"body"`
	SID       string   `xml:"sid,attr"`
	Type      string   `xml:"type,attr"`
	Condition string   `xml:"condition,attr"`
	Features  *struct {
		Inner string `xml:",innerxml"`
	} `xml:"features"`
}

const boshNS = "http://jabber.org/protocol/httpbind"

// bosh starts a BOSH session for host on Prosody's HTTP port (XEP-0124 /
// XEP-0206), checks that stream features come back, and ends the session.
// The HTTP Host is httpHost (the deployment's domain, as nginx forwards it).
func bosh(ctx context.Context, addr, httpHost, host string) error {
	rid := randRID()
	open := fmt.Sprintf(`<body content='text/xml; charset=utf-8' hold='1' rid='%d' to='%s' ver='1.6' wait='5' xml:lang='en' xmlns='%s' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>`,
		rid, xmlAttr(host), boshNS)
	b, err := boshPost(ctx, addr, httpHost, open)
	if err != nil {
		return err
	}
	if b.Type == "terminate" {
		cond := b.Condition
		if cond == "" {
			cond = "no condition"
		}
		return fmt.Errorf("Prosody refused a BOSH session for %s (%s): the host is not active", host, cond)
	}
	if b.SID == "" {
		return fmt.Errorf("BOSH answer for %s has no session id", host)
	}
	if b.Features == nil {
		return fmt.Errorf("BOSH session for %s got no stream features", host)
	}
	end := fmt.Sprintf(`<body rid='%d' sid='%s' type='terminate' xmlns='%s'><presence type='unavailable' xmlns='jabber:client'/></body>`,
		rid+1, xmlAttr(b.SID), boshNS)
	_, _ = boshPost(ctx, addr, httpHost, end) // best effort: the session times out anyway
	return nil
}

func boshPost(ctx context.Context, addr, host, body string) (*boshBody, error) {
	url := "http://" + addr + "/http-bind"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Host = host
	resp, err := client(addr, host).Do(req)
	if err != nil {
		return nil, fmt.Errorf("Prosody's BOSH endpoint does not answer: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the BOSH answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /http-bind answered %s (is mod_bosh loaded for the host?)", resp.Status)
	}
	var b boshBody
	if err := xml.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("BOSH answer is not a <body/>: %w", err)
	}
	return &b, nil
}

func randRID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])>>12 + 1 // < 2^53, as XEP-0124 requires
}

func xmlAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&apos;")
}
