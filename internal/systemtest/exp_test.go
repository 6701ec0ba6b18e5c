package systemtest

import (
	"context"
	"testing"
	"time"
)

func TestExperiment(t *testing.T) {
	e := Boot(t, Options{})
	t.Log(e.Apply())
	t.Log(e.ProsodyShell("host:list()"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := e.BOSH(ctx, e.Domain, e.Token("room1"))
	t.Logf("bosh: %v", err)
	if c != nil {
		t.Logf("jid %s", c.JID)
	}
	w, err := e.Websocket(ctx, e.Domain, "room1", e.Token("room1"))
	t.Logf("ws: %v", err)
	if w != nil {
		t.Logf("jid %s", w.JID)
	}
	f, err := e.Component(ctx, "focus")
	t.Logf("focus: %v", err)
	if f != nil {
		t.Logf("focus jid %s", f.JID)
		t.Logf("focus join: %v", f.JoinMUC(ctx, e.MUC("room1"), "focus"))
		if c != nil {
			t.Logf("bosh join: %v", c.JoinMUC(ctx, e.MUC("room1"), "user1"))
			t.Logf("bosh join other: %v", c.JoinMUC(ctx, e.MUC("room2"), "user1"))
			s, err := c.ExternalServices(ctx)
			t.Logf("services: %+v %v", s, err)
		}
	}
	t.Log(e.Apply())
	t.Fail()
}
