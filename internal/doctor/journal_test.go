package doctor

import (
	"context"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/journal"
)

// Recorded journal lines in the formats the real daemons log them
// (journalctl -o short-iso).
var recordedJournal = journal.Recorded{
	"prosody.service": {
		"2026-11-27T09:58:01+0000 meet prosody[812]: meet.example.test:auth_token            warn        Error verifying token err:not-allowed, reason:Invalid signature tenant: room:weekly user_agent:Mozilla/5.0",
		"2026-11-27T09:58:09+0000 meet prosody[812]: meet.example.test:auth_token            warn        Error verifying token err:not-allowed, reason:Invalid signature tenant: room:weekly user_agent:Mozilla/5.0",
		"2026-11-27T09:59:12+0000 meet prosody[812]: meet.example.test:auth_token            warn        Error verifying token err:not-allowed, reason:Not acceptable by exp (42.0 sec since expired, valid for:7200.0 sec) tenant: room:x user_agent:curl",
		"2026-11-27T10:01:44+0000 meet prosody[812]: conference.meet.example.test:token_verification error       Token eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoid2Vla2x5In0.c2lnbmF0dXJlLXNlY3JldA not allowed to join: other@conference.meet.example.test err: nil reason: Room and token mismatched",
		"2026-11-27T10:02:00+0000 meet prosody[812]: modulemanager                            error       Unable to load module 'muc_size': /usr/share/jitsi-meet/prosody-plugins/mod_muc_size.lua: module 'basexx' not found",
		"2026-11-27T10:03:00+0000 meet prosody[812]: c2s55d1          info        Client connected",
	},
	"jicofo.service": {
		"2026-11-27T10:04:00+0000 meet jicofo[900]: Jicofo 2026-11-27 10:04:00.123 SEVERE: [29] XmppProviderImpl.doConnect#265: Failed to connect/login: SASLError using SCRAM-SHA-1: not-authorized",
	},
	"nginx.service": {
		"2026-11-27T10:05:00+0000 meet nginx[1000]: nginx: [emerg] bind() to 0.0.0.0:443 failed (98: Address already in use)",
	},
	"coturn.service": {
		"2026-11-27T10:06:00+0000 meet turnserver[1100]: 0: : Trying to bind fd 17 to <203.0.113.10:3478>: errno=99",
	},
}

func TestJournalKnownErrors(t *testing.T) {
	d := testDeployment()
	c := &checker{d: d, env: Env{Journal: recordedJournal}, opts: Options{Root: "/"}}
	rs := c.checkJournal(context.Background())
	want := map[string][]string{
		"journal.prosody.token-login": {`"Invalid signature"`, "2 time(s)", "the spec's secret", `"Not acceptable by exp`},
		"journal.prosody.token-join":  {"Room and token mismatched", "room_name"},
		"journal.prosody.module-load": {"muc_size", "module 'basexx' not found", "prosody.lua-deps"},
		"journal.jicofo.xmpp-login":   {"not-authorized", "jitsi-agent apply"},
		"journal.nginx.bind":          {"0.0.0.0:443", "Address already in use", "ss -ltnp"},
		"journal.coturn.bind":         {"203.0.113.10:3478", "turn.port"},
	}
	got := map[string]string{}
	for _, r := range rs {
		if r.Status != Warn || r.Fix == "" {
			t.Errorf("%s: %s (fix %q)", r.ID, r.Status, r.Fix)
		}
		got[r.ID] += r.Seen + " | " + r.Fix + "\n"
		if strings.Contains(r.Seen+r.Fix, "eyJ") || strings.Contains(r.Seen+r.Fix, "c2lnbmF0dXJl") {
			t.Errorf("%s prints a token: %s", r.ID, r.Seen)
		}
	}
	for id, subs := range want {
		for _, s := range subs {
			if !strings.Contains(got[id], s) {
				t.Errorf("%s lacks %q:\n%s", id, s, got[id])
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("results %v", got)
	}
	// Clean journals pass; no journal skips.
	c.env.Journal = journal.Recorded{"prosody.service": {"2026-11-27T10:03:00+0000 meet prosody[812]: c2s55d1 info Client connected"}}
	if rs := c.checkJournal(context.Background()); len(rs) != 1 || rs[0].Status != Pass {
		t.Errorf("clean journal: %+v", rs)
	}
	c.env.Journal = nil
	if rs := c.checkJournal(context.Background()); len(rs) != 1 || rs[0].Status != Skip {
		t.Errorf("no journal: %+v", rs)
	}
}

func TestMaskTokens(t *testing.T) {
	for _, in := range []string{
		"GET /xmpp-websocket?room=r&token=eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig HTTP/1.1",
		"GET /weekly?jwt=abc.def.ghi HTTP/2",
		"Authorization: Bearer 5e0b9d3a7c1f4e8b2d6a0c9f3b7e1d5a",
		"app_secret = \"s3cr3t-value\"",
	} {
		out := journal.MaskTokens(in)
		for _, leak := range []string{"eyJ", "abc.def", "5e0b9d3a", "s3cr3t"} {
			if strings.Contains(out, leak) {
				t.Errorf("MaskTokens(%q) = %q", in, out)
			}
		}
	}
}
