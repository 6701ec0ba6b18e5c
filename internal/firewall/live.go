package firewall

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// Live is what the kernel holds for the agent's table, for doctor.
type Live struct {
	// Exists is false when there is no table inet jitsi_agent.
	Exists bool
	// State compares it with the rendered ruleset.
	State DriftState
	// Policy is the input chain's policy ("drop").
	Policy string
	// Accepts are the ports its input chain accepts (read from nft -j).
	Accepts []Port
	// Deadline is set while a confirmed apply waits for "confirm".
	Deadline time.Time
}

// Allows reports whether the live table accepts every port of p from any
// source (open) or only from some (restricted, with those sources).
func (l Live) Allows(p Port) (open bool, sources []netip.Prefix) {
	to := max(p.From, p.To)
	for _, a := range l.Accepts {
		if a.Proto != p.Proto || a.From > p.From || max(a.From, a.To) < to {
			continue
		}
		if len(a.Sources) == 0 {
			return true, nil
		}
		sources = append(sources, a.Sources...)
	}
	return false, sources
}

// Inspect reads the live table and compares it with script.
func (m *Manager) Inspect(ctx context.Context, script []byte) (Live, error) {
	var l Live
	st, err := m.Drift(ctx, script)
	if err != nil {
		return l, err
	}
	l.State = st
	if p, err := m.PendingConfirm(); err == nil && p != nil {
		l.Deadline = p.Deadline
	}
	js, ok, err := m.Nft.TableJSON(ctx)
	if err != nil || !ok {
		return l, err
	}
	l.Exists = true
	l.Policy, l.Accepts, err = Accepts(js)
	return l, err
}

// Accepts reads nft -j output of the agent's table: the input chain's
// policy and the destination ports its accept rules cover, with their
// source restrictions. Rules it does not understand (other matches than
// protocol, port and source address) are left out, so a port is only ever
// reported open when a plain rule opens it.
func Accepts(js []byte) (string, []Port, error) {
	var doc struct {
		Nftables []struct {
			Chain *struct {
				Name   string `json:"name"`
				Hook   string `json:"hook"`
				Policy string `json:"policy"`
			} `json:"chain"`
			Rule *struct {
				Chain string            `json:"chain"`
				Expr  []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return "", nil, fmt.Errorf("parse nft -j output: %w", err)
	}
	inputChains := map[string]bool{}
	policy := ""
	for _, o := range doc.Nftables {
		if o.Chain != nil && o.Chain.Hook == "input" {
			inputChains[o.Chain.Name] = true
			policy = o.Chain.Policy
		}
	}
	var out []Port
	for _, o := range doc.Nftables {
		if o.Rule == nil || !inputChains[o.Rule.Chain] {
			continue
		}
		if p, ok := parseRule(o.Rule.Expr); ok {
			out = append(out, p...)
		}
	}
	return policy, out, nil
}

// parseRule turns "[ip|ip6 saddr S] tcp|udp dport P accept" into ports.
func parseRule(exprs []json.RawMessage) ([]Port, bool) {
	var proto string
	var ranges [][2]int
	var sources []netip.Prefix
	accept := false
	for _, raw := range exprs {
		var e map[string]json.RawMessage
		if json.Unmarshal(raw, &e) != nil {
			return nil, false
		}
		if _, ok := e["accept"]; ok && len(e) == 1 {
			accept = true
			continue
		}
		mraw, ok := e["match"]
		if !ok || len(e) != 1 {
			return nil, false // counters, ct, meta...: not a plain port rule
		}
		var m struct {
			Op    string          `json:"op"`
			Left  json.RawMessage `json:"left"`
			Right json.RawMessage `json:"right"`
		}
		if json.Unmarshal(mraw, &m) != nil || (m.Op != "==" && m.Op != "in") {
			return nil, false
		}
		var left struct {
			Payload *struct {
				Protocol string `json:"protocol"`
				Field    string `json:"field"`
			} `json:"payload"`
		}
		if json.Unmarshal(m.Left, &left) != nil || left.Payload == nil {
			return nil, false
		}
		switch {
		case (left.Payload.Protocol == "tcp" || left.Payload.Protocol == "udp") && left.Payload.Field == "dport":
			proto = left.Payload.Protocol
			rs, ok := portValues(m.Right)
			if !ok {
				return nil, false
			}
			ranges = rs
		case (left.Payload.Protocol == "ip" || left.Payload.Protocol == "ip6") && left.Payload.Field == "saddr":
			ps, ok := prefixValues(m.Right)
			if !ok {
				return nil, false
			}
			sources = ps
		default:
			return nil, false
		}
	}
	if !accept || proto == "" {
		return nil, false
	}
	var out []Port
	for _, r := range ranges {
		p := Port{Proto: proto, From: r[0], Sources: sources}
		if r[1] > r[0] {
			p.To = r[1]
		}
		out = append(out, p)
	}
	return out, true
}

// portValues reads 443, {"range": [a, b]} or {"set": [...]}.
func portValues(raw json.RawMessage) ([][2]int, bool) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return [][2]int{{n, n}}, true
	}
	var obj struct {
		Range []int           `json:"range"`
		Set   json.RawMessage `json:"set"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	if len(obj.Range) == 2 {
		return [][2]int{{obj.Range[0], obj.Range[1]}}, true
	}
	var elems []json.RawMessage
	if obj.Set == nil || json.Unmarshal(obj.Set, &elems) != nil {
		return nil, false
	}
	var out [][2]int
	for _, e := range elems {
		rs, ok := portValues(e)
		if !ok {
			return nil, false
		}
		out = append(out, rs...)
	}
	return out, true
}

// prefixValues reads "10.0.0.1", {"prefix": {...}} or {"set": [...]}.
func prefixValues(raw json.RawMessage) ([]netip.Prefix, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, false
		}
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, true
	}
	var obj struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Set json.RawMessage `json:"set"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	if obj.Prefix != nil {
		a, err := netip.ParseAddr(obj.Prefix.Addr)
		if err != nil {
			return nil, false
		}
		return []netip.Prefix{netip.PrefixFrom(a, obj.Prefix.Len)}, true
	}
	var elems []json.RawMessage
	if obj.Set == nil || json.Unmarshal(obj.Set, &elems) != nil {
		return nil, false
	}
	var out []netip.Prefix
	for _, e := range elems {
		ps, ok := prefixValues(e)
		if !ok {
			return nil, false
		}
		out = append(out, ps...)
	}
	return out, true
}
