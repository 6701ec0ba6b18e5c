package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// UnitStatus is the part of a systemd unit's state the doctor reads.
type UnitStatus struct {
	// LoadState: "loaded", "not-found", "masked", "error", ...
	LoadState string
	// ActiveState: "active", "reloading", "inactive", "failed",
	// "activating", "deactivating".
	ActiveState string
	// SubState: "running", "exited", "dead", ... (for the report).
	SubState string
}

// ServiceManager reports a unit's state. The lead wires the systemd package
// (systemd.DBus.Properties maps field for field).
type ServiceManager interface {
	UnitStatus(ctx context.Context, unit string) (UnitStatus, error)
}

// HTTPDoer sends a request; *http.Client implements it.
type HTTPDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// components this host runs and the doctor should see running.
func (c *checker) activeComponents() []string {
	var out []string
	for _, comp := range spec.Components {
		if !c.runs(comp) {
			continue
		}
		if s, ok := c.d.Services[comp]; ok && !s.Enabled {
			continue
		}
		out = append(out, comp)
	}
	return out
}

func (c *checker) checkServices(ctx context.Context) []Result {
	comps := c.activeComponents()
	if len(comps) == 0 {
		return []Result{skip("service", "Services active", "this host runs no enabled component")}
	}
	if c.env.Services == nil {
		return []Result{skip("service", "Services active", "service manager not available in this build")}
	}
	out := make([]Result, len(comps))
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i, comp := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = c.checkService(ctx, comp)
		}()
	}
	wg.Wait()
	// One unreachable service manager is one problem, not five.
	if len(comps) > 1 {
		same := true
		for _, e := range errs {
			if e == nil || e.Error() != errs[0].Error() {
				same = false
				break
			}
		}
		if same {
			return []Result{fail("service", "Services active", "cannot query systemd: "+errs[0].Error(),
				"run the doctor as root on a host booted with systemd (the system D-Bus must be reachable); 'systemctl status' shows the state")}
		}
	}
	return out
}

func (c *checker) checkService(ctx context.Context, comp string) (Result, error) {
	id := "service." + comp
	unit := c.unit(comp, comp+".service")
	title := unit + " active"
	st, err := c.env.Services.UnitStatus(ctx, unit)
	if err != nil {
		return fail(id, title, "cannot query "+unit+": "+err.Error(),
			"run the doctor as root on a host booted with systemd; 'systemctl status "+unit+"' shows the state"), err
	}
	return c.unitResult(id, title, unit, comp, st), nil
}

func (c *checker) unitResult(id, title, unit, comp string, st UnitStatus) Result {
	state := st.ActiveState
	if st.SubState != "" {
		state += " (" + st.SubState + ")"
	}
	switch st.LoadState {
	case "not-found":
		return fail(id, title, unit+" is not installed",
			"install the package that provides "+unit+" ("+unitPackage(comp)+"), or set the unit name in the spec's service block")
	case "masked":
		return fail(id, title, unit+" is masked", "'systemctl unmask "+unit+"', then 'systemctl enable --now "+unit+"'")
	case "error", "bad-setting":
		return fail(id, title, unit+" cannot be loaded ("+st.LoadState+")",
			"'systemctl status "+unit+"' shows the unit file error; fix it and run 'systemctl daemon-reload'")
	}
	switch st.ActiveState {
	case "active":
		return pass(id, title, unit+" is "+state)
	case "activating", "reloading":
		return warn(id, title, unit+" is "+state,
			"wait a few seconds and run the doctor again; if it stays "+st.ActiveState+", see 'journalctl -u "+unit+" -n 50'")
	case "failed":
		return fail(id, title, unit+" has failed",
			"see why with 'journalctl -u "+unit+" -n 50', fix it, then 'systemctl restart "+unit+"'")
	default:
		return fail(id, title, unit+" is "+state, "start it: 'systemctl enable --now "+unit+"'")
	}
}

// unitPackage names the Debian package of a component (internal/files).
func unitPackage(comp string) string {
	if c, ok := files.Lookup(comp); ok && c.Package != "" {
		return "apt-get install " + c.Package
	}
	return "see the component's installation guide"
}

type healthURL struct{ comp, url string }

func (c *checker) healthURLs() []healthURL {
	var out []healthURL
	seen := map[string]bool{}
	add := func(comp, u string) {
		if u == "" || seen[u] || !c.runs(comp) {
			return
		}
		seen[u] = true
		out = append(out, healthURL{comp, u})
	}
	add(spec.JVB, c.d.Videobridge.HealthURL)
	add(spec.Jicofo, c.d.Jicofo.HealthURL)
	for _, comp := range sortedKeys(c.d.Services) {
		s := c.d.Services[comp]
		if s.Enabled {
			add(comp, s.HealthURL)
		}
	}
	return out
}

func (c *checker) checkHealth(ctx context.Context) []Result {
	urls := c.healthURLs()
	if len(urls) == 0 {
		return []Result{skip("health", "Health endpoints answer", "no health URL configured")}
	}
	out := make([]Result, len(urls))
	// Leave the group time to report: each probe gets 3/4 of the budget.
	per := c.opts.Timeout * 3 / 4
	var wg sync.WaitGroup
	for i, h := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, per)
			defer cancel()
			out[i] = c.probe(rctx, h, i, urls)
		}()
	}
	wg.Wait()
	return out
}

func (c *checker) probe(ctx context.Context, h healthURL, i int, all []healthURL) Result {
	id := "health." + h.comp
	for j := 0; j < i; j++ { // a second URL for the same component
		if all[j].comp == h.comp {
			id = fmt.Sprintf("health.%s.%d", h.comp, i)
			break
		}
	}
	title := h.comp + " health endpoint"
	unit := c.unit(h.comp, h.comp+".service")
	fix := "see 'journalctl -u " + unit + " -n 50' (and /var/log/jitsi for jicofo/jvb); the health URL must be served on loopback by the component itself"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return fail(id, title, "bad health URL "+h.url+": "+err.Error(), "correct the health URL in the spec")
	}
	t0 := time.Now()
	resp, err := c.env.HTTP.Do(req)
	if err != nil {
		return fail(id, title, h.url+": "+shortErr(err), "start "+unit+" and make sure it listens where "+h.url+" points; "+fix)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	el := time.Since(t0).Round(time.Millisecond)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		seen := fmt.Sprintf("%s answered %s", h.url, resp.Status)
		if b := strings.TrimSpace(string(body)); b != "" && isPrintable(b) {
			seen += ": " + truncate(b, 120)
		}
		return fail(id, title, seen, h.comp+" reports itself unhealthy; "+fix)
	}
	return pass(id, title, fmt.Sprintf("%s answered %s in %s", h.url, resp.Status, el))
}

func shortErr(err error) string {
	s := err.Error()
	if strings.Contains(s, "connection refused") {
		return "connection refused"
	}
	if strings.Contains(s, "context deadline exceeded") || strings.Contains(s, "Client.Timeout") {
		return "no answer in time"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}
