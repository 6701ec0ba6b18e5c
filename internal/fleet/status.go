package fleet

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
)

// Report is the fleet as the store shows it (`fleet status`).
type Report struct {
	Generation int64        `json:"generation"`
	Previous   int64        `json:"previous,omitempty"`
	Latest     int64        `json:"latest"`
	Reason     string       `json:"reason,omitempty"`
	At         time.Time    `json:"at"`
	Rollout    string       `json:"rollout"`
	Hosts      []HostReport `json:"hosts"`
}

// HostReport is one host: its place in the current generation and what
// it registered (Registered false: no live lease, the host is down or cut
// off).
type HostReport struct {
	Name            string   `json:"name"`
	Roles           []string `json:"roles,omitempty"`
	Wave            int      `json:"wave"`
	InGeneration    bool     `json:"in_generation"`
	Registered      bool     `json:"registered"`
	Generation      int64    `json:"generation"`
	Target          int64    `json:"target,omitempty"`
	State           string   `json:"state"`
	Healthy         bool     `json:"healthy"`
	Drift           []string `json:"drift,omitempty"`
	LastError       string   `json:"last_error,omitempty"`
	Waiting         string   `json:"waiting,omitempty"`
	Version         string   `json:"version,omitempty"`
	Address         string   `json:"address,omitempty"`
	LeaseAgeSeconds float64  `json:"lease_age_seconds,omitempty"`
}

// Converged reports whether every host of the current generation runs it,
// healthy and without drift.
func (r *Report) Converged() bool {
	if r.Generation == 0 {
		return false
	}
	for _, h := range r.Hosts {
		if h.InGeneration && (!h.Registered || h.Generation != r.Generation || !h.Healthy || len(h.Drift) > 0) {
			return false
		}
	}
	return true
}

// BuildReport reads the fleet from the store.
func BuildReport(ctx context.Context, st fleetstore.Store, now time.Time) (*Report, error) {
	cur, _, err := readCurrent(ctx, st)
	if err != nil {
		return nil, err
	}
	rep := &Report{Generation: cur.Generation, Previous: cur.Previous, Latest: cur.Latest, Reason: cur.Reason, At: cur.At}
	kvs, _, err := st.List(ctx, prefixHost)
	if err != nil {
		return nil, err
	}
	regs := map[string]*HostRecord{}
	for _, kv := range kvs {
		h, err := decode[HostRecord](kv.Value)
		if err != nil {
			continue
		}
		regs[strings.TrimPrefix(kv.Key, prefixHost)] = h
	}
	var g *Generation
	if cur.Generation != 0 {
		if g, err = getGeneration(ctx, st, cur.Generation); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	add := func(name string, plan *HostPlan) {
		hr := HostReport{Name: name, State: "down"}
		if plan != nil {
			hr.Roles, hr.Wave, hr.InGeneration, hr.Address = plan.Roles, plan.Wave, true, plan.Address
		}
		if r, ok := regs[name]; ok {
			hr.Registered = true
			hr.Generation, hr.Target, hr.State, hr.Healthy = r.Generation, r.Target, r.State, r.Healthy
			hr.Drift, hr.LastError, hr.Waiting, hr.Version = r.Drift, r.LastError, r.Waiting, r.Version
			if hr.Address == "" {
				hr.Address = r.Address
			}
			if len(hr.Roles) == 0 {
				hr.Roles = r.Roles
			}
			if !r.Started.IsZero() {
				hr.LeaseAgeSeconds = now.Sub(r.Started).Round(time.Second).Seconds()
			}
		}
		seen[name] = true
		rep.Hosts = append(rep.Hosts, hr)
	}
	if g != nil {
		for i := range g.Hosts {
			add(g.Hosts[i].Name, &g.Hosts[i])
		}
	}
	var extra []string
	for name := range regs {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		add(name, nil)
	}
	rep.Rollout = rep.rollout(regs)
	return rep, nil
}

func (r *Report) rollout(regs map[string]*HostRecord) string {
	switch {
	case r.Generation == 0:
		return "nothing pushed yet"
	case r.Converged():
		return "converged"
	}
	for _, h := range r.Hosts {
		if h.InGeneration && h.Registered && h.Target == r.Generation && h.Generation != r.Generation && h.LastError != "" {
			return fmt.Sprintf("stopped: %s failed generation %d: %s ('jitsi-agent fleet rollback' returns to generation %d)", h.Name, r.Generation, h.LastError, r.Previous)
		}
	}
	done, total := 0, 0
	for _, h := range r.Hosts {
		if h.InGeneration && h.Registered {
			total++
			if h.Generation == r.Generation && h.Healthy {
				done++
			}
		}
	}
	return fmt.Sprintf("in progress: %d of %d live hosts on generation %d", done, total, r.Generation)
}

// WriteText prints the report as a table.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Generation %d (%s %s; previous %d, latest %d): %s\n\n", r.Generation, r.Reason, r.At.Format(time.RFC3339), r.Previous, r.Latest, r.Rollout)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tROLES\tWAVE\tGEN\tSTATE\tHEALTH\tDRIFT\tLEASE AGE\tLAST ERROR")
	for _, h := range r.Hosts {
		health := "healthy"
		if !h.Healthy {
			health = "unhealthy"
		}
		if !h.Registered {
			health = "-"
		}
		wave := fmt.Sprint(h.Wave)
		if !h.InGeneration {
			wave = "(not in spec)"
		}
		age := "-"
		if h.Registered {
			age = (time.Duration(h.LeaseAgeSeconds) * time.Second).String()
		}
		last := h.LastError
		if last == "" && h.Waiting != "" {
			last = "waiting for " + h.Waiting
		}
		if len(last) > 120 {
			last = last[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", h.Name, strings.Join(h.Roles, ","), wave, h.Generation, h.State, health, len(h.Drift), age, last)
	}
	tw.Flush()
}
