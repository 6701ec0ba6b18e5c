// Package xmpptest is a small XMPP client for system tests: it logs in to a
// real Prosody over BOSH (XEP-0124/0206), websocket (RFC 7395) or a TCP
// client stream with STARTTLS (RFC 6120), authenticates with SASL ANONYMOUS
// (the token travels in the URL, as Jitsi's web client sends it) or PLAIN,
// binds a resource, joins MUC rooms (XEP-0045), asks for external services
// (XEP-0215) and pings (XEP-0199).
//
// It is deliberately small and strict: every wait is bounded by the caller's
// context, every error says which step failed and quotes the server's
// answer. It is test support, not part of the agent.
package xmpptest

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Node is one XML element with its attributes, children and text.
type Node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []Node     `xml:",any"`
	Text    string     `xml:",chardata"`
}

// Attr returns the value of the attribute with this local name.
func (n Node) Attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with this local name (any namespace).
func (n Node) Child(local string) (Node, bool) {
	for _, c := range n.Nodes {
		if c.XMLName.Local == local {
			return c, true
		}
	}
	return Node{}, false
}

// Children returns every child with this local name.
func (n Node) Children(local string) []Node {
	var out []Node
	for _, c := range n.Nodes {
		if c.XMLName.Local == local {
			out = append(out, c)
		}
	}
	return out
}

// String renders the node back to XML (for error messages).
func (n Node) String() string {
	var b strings.Builder
	n.write(&b)
	s := b.String()
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

func (n Node) write(b *strings.Builder) {
	b.WriteString("<" + n.XMLName.Local)
	if n.XMLName.Space != "" {
		fmt.Fprintf(b, " xmlns=%q", n.XMLName.Space)
	}
	for _, a := range n.Attrs {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		fmt.Fprintf(b, " %s=%q", a.Name.Local, a.Value)
	}
	if len(n.Nodes) == 0 && strings.TrimSpace(n.Text) == "" {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	_ = xml.EscapeText(b, []byte(strings.TrimSpace(n.Text)))
	for _, c := range n.Nodes {
		c.write(b)
	}
	b.WriteString("</" + n.XMLName.Local + ">")
}

// StanzaError is an XMPP error answer (type="error").
type StanzaError struct {
	// Condition is the defined condition, e.g. "not-allowed",
	// "service-unavailable", "not-authorized".
	Condition string
	// Text is the optional human-readable text.
	Text string
	// Stanza is the whole error stanza.
	Stanza Node
}

func (e *StanzaError) Error() string {
	s := "xmpp error " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

func stanzaError(n Node) *StanzaError {
	e := &StanzaError{Stanza: n, Condition: "undefined-condition"}
	if er, ok := n.Child("error"); ok {
		for _, c := range er.Nodes {
			if c.XMLName.Local == "text" {
				e.Text = strings.TrimSpace(c.Text)
			} else {
				e.Condition = c.XMLName.Local
			}
		}
	}
	return e
}

func attrEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), "'", "&#39;")
}
