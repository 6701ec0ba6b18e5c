package xmpptest

import (
	"encoding/xml"
	"testing"
)

func TestStanzaErrorAndSelfPresence(t *testing.T) {
	var n Node
	err := xml.Unmarshal([]byte(`<presence xmlns="jabber:client" from="room2@conference.meet.test/bob" type="error">
<error type="cancel"><not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Room and token mismatched</text></error></presence>`), &n)
	if err != nil {
		t.Fatal(err)
	}
	se := stanzaError(n)
	if se.Condition != "not-allowed" || se.Text != "Room and token mismatched" || bare(n.Attr("from")) != "room2@conference.meet.test" {
		t.Errorf("%+v", se)
	}
	var p Node
	if err := xml.Unmarshal([]byte(`<presence from="r@c/me"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/><status code="110"/></x></presence>`), &p); err != nil {
		t.Fatal(err)
	}
	if !isSelfPresence(p) {
		t.Error("status 110 not recognised")
	}
	p.Nodes[0].Nodes = p.Nodes[0].Nodes[:1]
	if isSelfPresence(p) {
		t.Error("another occupant's presence taken for ours")
	}
	if got := attrEscape(`a'b<c`); got != "a&#39;b&lt;c" {
		t.Errorf("escape: %q", got)
	}
}
