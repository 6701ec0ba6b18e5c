package systemtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getConfigJS fetches https://DOMAIN:port/config.js through the box's nginx.
func getConfigJS(e *Env, port int) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s:%d/config.js", e.Domain, port), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

func withWeb(spec string, https int) string {
	return spec + fmt.Sprintf("\nweb {\n  https_port = %d\n}\n", https)
}

// TestProbedChanges: what `apply` does with changes only the running
// services can judge. A moved HTTPS port is served on the new port (the
// nginx probe waits for it); a port another service of the spec binds is a
// validation error before anything is swapped; a port something else holds
// passes nginx -t but nginx cannot bind it: the probe fails, the files are
// rolled back and the old port keeps serving.
func TestProbedChanges(t *testing.T) {
	e := Boot(t, Options{})
	out := e.Apply()
	for _, w := range []string{"probe nginx config.js: ok", "probe prosody bosh: ok", "probe prosody c2s-starttls: ok", "probe coturn stun: ok"} {
		if !strings.Contains(out, w) {
			t.Errorf("fresh apply: no %q:\n%s", w, out)
		}
	}
	site := "/etc/nginx/sites-available/" + e.Domain + ".conf"

	t.Run("nginx port change is served on the new port", func(t *testing.T) {
		e.SetSpec(withWeb(DefaultSpec(e.Domain), 8443))
		out := e.Apply()
		if !strings.Contains(out, "reload nginx.service") || !strings.Contains(out, "probe nginx config.js: ok (https://"+e.Domain+":8443/config.js") {
			t.Errorf("apply:\n%s", out)
		}
		code, body, err := getConfigJS(e, 8443)
		if err != nil || code != 200 || !strings.Contains(body, e.Domain) {
			t.Fatalf("config.js on 8443: %d %v", code, err)
		}
		// nginx's reload is graceful: the old workers hold the 443 socket
		// until they have taken the quit signal, a moment after the
		// reload (seconds under load). Wait (bounded) for them to let go.
		e.WaitFor(15*time.Second, "443 no longer served after the move", func() bool {
			_, _, err := getConfigJS(e, 443)
			return err != nil
		})
	})

	t.Run("a clash is refused before any swap", func(t *testing.T) {
		before := string(e.ReadFile(site))
		e.SetSpec(withWeb(DefaultSpec(e.Domain), 5222))
		out, code := e.Agent("apply", SpecPath)
		if code != 1 || !strings.Contains(out, "Port conflict") || !strings.Contains(out, "5222/tcp is used by web.https_port") ||
			!strings.Contains(out, "meet.hcl:") {
			t.Fatalf("apply with https_port = 5222: exit %d\n%s", code, out)
		}
		if string(e.ReadFile(site)) != before {
			t.Error("the nginx site changed")
		}
		if code, _, err := getConfigJS(e, 8443); err != nil || code != 200 {
			t.Errorf("8443 stopped serving: %d %v", code, err)
		}
	})

	t.Run("a failed probe rolls back and the old config keeps serving", func(t *testing.T) {
		// Something outside the spec holds 9443: nginx -t passes (it
		// does not bind), the reload cannot bind it.
		e.MustRun("systemd-run", "--unit=port-hog", "--", "python3", "-m", "http.server", "--bind", "0.0.0.0", "9443")
		e.WaitFor(10*time.Second, "the hog listens", func() bool {
			c, err := e.Dial(context.Background(), "tcp", "127.0.0.1:9443")
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		before := string(e.ReadFile(site))
		e.SetSpec(withWeb(DefaultSpec(e.Domain), 9443))
		start := time.Now()
		out, code := e.Agent("apply", SpecPath)
		t.Logf("failed apply took %s", time.Since(start).Round(time.Millisecond))
		if code != 1 || !strings.Contains(out, "the services did not take the change") || !strings.Contains(out, "nginx probe config.js") ||
			!strings.Contains(out, "rolled back") {
			t.Fatalf("apply with a port nginx cannot bind: exit %d\n%s", code, out)
		}
		if string(e.ReadFile(site)) != before {
			t.Error("the previous nginx site was not restored")
		}
		if code, body, err := getConfigJS(e, 8443); err != nil || code != 200 || !strings.Contains(body, e.Domain) {
			t.Errorf("the old port stopped serving: %d %v", code, err)
		}
		e.MustRun("systemctl", "stop", "port-hog")
	})

	t.Run("doctor names a stopped coturn", func(t *testing.T) {
		e.MustRun("systemctl", "stop", "coturn.service")
		out, code := e.Agent("doctor", SpecPath)
		if code != 1 || !strings.Contains(out, "no STUN answer") || !strings.Contains(out, "systemctl start coturn.service") {
			t.Errorf("doctor with coturn stopped: exit %d\n%s", code, out)
		}
		e.MustRun("systemctl", "start", "coturn.service")
	})
}

// TestDaemonKeepsServicesRunning: the hardened unit itself (`jitsi-agent
// unit`): a stopped Prosody runs again within 30 s and status says so; an
// nginx change validates (its staged nginx -t under ProtectSystem=strict)
// and is served; a spec that is broken when the daemon starts still gives
// READY (systemctl start returns), a degraded status and /healthz on the
// metrics port.
func TestDaemonKeepsServicesRunning(t *testing.T) {
	e := Boot(t, Options{})
	e.Apply() // the documented bootstrap: apply once, then the daemon
	e.StartDaemon()
	st := e.WaitApply(0, 2*time.Minute)
	if st.State != "ok" {
		t.Fatalf("daemon after start: %+v", st)
	}

	t.Run("a stopped prosody runs again within 30 s", func(t *testing.T) {
		e.MustRun("systemctl", "stop", "prosody.service")
		stopped := time.Now()
		e.WaitFor(30*time.Second, "prosody active again", func() bool {
			out, _ := e.Exec(context.Background(), "systemctl", "is-active", "prosody.service")
			return strings.TrimSpace(out) == "active"
		})
		t.Logf("prosody ran again after %s", time.Since(stopped).Round(100*time.Millisecond))
		e.WaitFor(30*time.Second, "status shows the restart", func() bool {
			out, _ := e.Agent("status")
			return strings.Contains(out, "service:      prosody.service: ok (started again 1 time(s)")
		})
		// journald stores the daemon's stderr on its own schedule: --sync
		// first (everything logged before it is stored).
		e.MustRun("journalctl", "--sync")
		out, _ := e.Exec(context.Background(), "journalctl", "--no-pager", "-u", DaemonUnit, "-o", "cat")
		if !strings.Contains(out, "prosody.service is inactive; starting it again") {
			t.Errorf("the daemon did not say it restarted prosody:\n%s", out)
		}
	})

	t.Run("an nginx change under the hardened unit", func(t *testing.T) {
		// The daemon may be between passes (the restart above): wait for it
		// to be idle so that the count below is of a finished pass. A
		// bound, not a timing: a loaded machine takes more than a second.
		e.WaitApply(0, time.Minute)
		written := time.Now()
		e.SetSpec(withWeb(DefaultSpec(e.Domain), 8443))
		st := e.WaitApplyAfter(written, 2*time.Minute)
		if st.State != "ok" || st.LastApply == nil || st.LastApply.Error != "" {
			t.Fatalf("nginx change under the hardened unit: %+v %+v", st, st.LastApply)
		}
		if code, _, err := getConfigJS(e, 8443); err != nil || code != 200 {
			t.Fatalf("config.js on 8443: %d %v", code, err)
		}
		out, _ := e.Exec(context.Background(), "stat", "-c", "%U", "/var/lib/nginx/body")
		if u := strings.TrimSpace(out); u == "nobody" {
			t.Errorf("/var/lib/nginx/body owned by %s after the staged check", u)
		}
	})

	t.Run("a broken spec at start: READY, degraded, health listens", func(t *testing.T) {
		e.MustRun("systemctl", "stop", DaemonUnit)
		e.SetSpec("domain = \n")
		start := time.Now()
		e.MustRun("systemctl", "start", DaemonUnit) // returns on READY=1
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("systemctl start took %s", d)
		}
		out, _ := e.Exec(context.Background(), "systemctl", "show", DaemonUnit, "-p", "ActiveState,StatusText")
		if !strings.Contains(out, "ActiveState=active") || !strings.Contains(out, "StatusText=degraded: invalid spec") {
			t.Fatalf("unit after a start with a broken spec:\n%s", out)
		}
		st, err := e.DaemonStatus()
		if err != nil || !st.Degraded || !strings.Contains(st.DegradedReason, "invalid spec") {
			t.Fatalf("status: %+v %v", st, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:9137/healthz", nil)
		resp, err := e.HTTPClient().Do(req)
		if err != nil {
			t.Fatalf("/healthz on the default metrics address: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "invalid spec") {
			t.Errorf("/healthz: %d %s", resp.StatusCode, b)
		}
	})
}
