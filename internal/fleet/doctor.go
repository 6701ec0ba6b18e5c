package fleet

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
)

// MemberStatuser asks each etcd member for its status (fleetstore.Etcd).
type MemberStatuser interface {
	Status(ctx context.Context) []fleetstore.MemberStatus
}

// Doctor checks the fleet from one machine: the store's members, the
// fleet key against the current generation and the cluster secret, the
// rollout, each host's generation lag and lease, and (host != "") that
// this host is registered. key may be nil (not checked); with a key and a
// host, it also dials from this machine the services of the other
// registered hosts that host needs (PeerPorts, CheckPeerPorts).
func Doctor(ctx context.Context, st fleetstore.Store, members MemberStatuser, key *Key, host string, now time.Time) []doctor.Result {
	var out []doctor.Result
	res := func(id, title string, s doctor.Status, seen, fix string) {
		out = append(out, doctor.Result{ID: id, Title: title, Status: s, Seen: seen, Fix: fix})
	}
	if members != nil {
		var up, down []string
		leader := ""
		version := ""
		for _, m := range members.Status(ctx) {
			if m.Err != nil {
				down = append(down, fmt.Sprintf("%s (%v)", m.Endpoint, m.Err))
				continue
			}
			up = append(up, m.Endpoint)
			version = m.Version
			if m.Leader {
				leader = m.Endpoint
			}
		}
		switch {
		case len(up) == 0:
			res("fleet.store", "etcd reachable", doctor.Fail, "no member answers: "+strings.Join(down, "; "),
				"check --etcd URLs, --etcd-ca/--etcd-cert/--etcd-key (client certificate signed by the cluster's CA) and the network path to port 2379; hosts keep their last good generation meanwhile")
			return out
		case len(down) > 0:
			res("fleet.store", "etcd reachable", doctor.Warn, fmt.Sprintf("%d of %d members answer (etcd %s); down: %s", len(up), len(up)+len(down), version, strings.Join(down, "; ")),
				"restart the members that do not answer (systemctl status etcd on them); a majority keeps the fleet running")
		default:
			res("fleet.store", "etcd reachable", doctor.Pass, fmt.Sprintf("%d members answer (etcd %s), leader %s", len(up), version, leader), "")
		}
	}
	rep, err := BuildReport(ctx, st, now)
	if err != nil {
		res("fleet.generation", "fleet generation", doctor.Fail, err.Error(), "check that etcd answers and --etcd-prefix names this fleet")
		return out
	}
	if rep.Generation == 0 {
		res("fleet.generation", "fleet generation", doctor.Fail, "nothing pushed yet", "publish the spec: jitsi-agent fleet push SPEC --etcd ...")
		return out
	}
	res("fleet.generation", "fleet generation", doctor.Pass, fmt.Sprintf("generation %d (%s at %s)", rep.Generation, rep.Reason, rep.At.Format(time.RFC3339)), "")
	var bundle *Bundle
	var secret string
	if key != nil {
		g, err := getGeneration(ctx, st, rep.Generation)
		switch {
		case err != nil:
			res("fleet.key", "fleet key", doctor.Fail, err.Error(), "push again")
		case g.KeyID != key.ID:
			res("fleet.key", "fleet key", doctor.Fail, fmt.Sprintf("generation %d is sealed with key %s, this machine has %s", g.Number, g.KeyID, key.ID),
				"copy the fleet key file of the machine that pushes to this one (mode 0600)")
		default:
			var err error
			if secret, _, err = openClusterSecret(ctx, st, *key); err != nil {
				res("fleet.key", "fleet key", doctor.Fail, err.Error(), "every host needs the same fleet key file")
			} else if bundle, err = g.Open(*key); err != nil {
				res("fleet.key", "fleet key", doctor.Fail, err.Error(), "every host needs the same fleet key file")
			} else {
				res("fleet.key", "fleet key", doctor.Pass, "key "+key.ID+" opens the current generation and the cluster secret", "")
			}
		}
	}
	switch {
	case rep.Converged():
		res("fleet.rollout", "rollout", doctor.Pass, rep.Rollout, "")
	case strings.HasPrefix(rep.Rollout, "stopped"):
		res("fleet.rollout", "rollout", doctor.Fail, rep.Rollout, "fix the spec and push again, or roll back: jitsi-agent fleet rollback --etcd ...")
	default:
		res("fleet.rollout", "rollout", doctor.Warn, rep.Rollout, "wait for the rollout; 'jitsi-agent fleet status' shows what each host waits for")
	}
	for _, h := range rep.Hosts {
		id := "fleet.host." + h.Name
		title := "host " + h.Name
		switch {
		case !h.InGeneration:
			res(id, title, doctor.Warn, "registered but not in generation "+fmt.Sprint(rep.Generation), "remove the agent from that machine, or add its host block and push")
		case !h.Registered:
			res(id, title, doctor.Fail, "not registered (no live lease): the agent is stopped, or cut off from etcd",
				"on "+h.Name+": systemctl status jitsi-agent; jitsi-agent fleet doctor --etcd ... --host "+h.Name)
		case h.LastError != "":
			res(id, title, doctor.Fail, fmt.Sprintf("on generation %d, lag %d; last error: %s", h.Generation, rep.Generation-h.Generation, h.LastError), "see its journal (journalctl -u jitsi-agent) and fix or roll back")
		case h.Generation != rep.Generation:
			why := ""
			if h.Waiting != "" {
				why = "; waiting for " + h.Waiting
			}
			res(id, title, doctor.Warn, fmt.Sprintf("on generation %d, %d behind%s", h.Generation, rep.Generation-h.Generation, why), "the rollout reaches it after the hosts before it are healthy")
		case !h.Healthy:
			res(id, title, doctor.Warn, fmt.Sprintf("on generation %d but %s", h.Generation, h.State), "on "+h.Name+": jitsi-agent status")
		case len(h.Drift) > 0:
			res(id, title, doctor.Warn, fmt.Sprintf("on generation %d; hand-edited files kept: %s", h.Generation, strings.Join(h.Drift, ", ")), "undo the edits or set drift = \"restore\"")
		default:
			res(id, title, doctor.Pass, fmt.Sprintf("on generation %d, healthy, lease held for %s", h.Generation, time.Duration(h.LeaseAgeSeconds)*time.Second), "")
		}
	}
	if host != "" {
		found := false
		for _, h := range rep.Hosts {
			found = found || h.Name == host && h.Registered
		}
		if found {
			res("fleet.lease", "this host's lease", doctor.Pass, host+" is registered", "")
		} else {
			res("fleet.lease", "this host's lease", doctor.Fail, host+" has no live registration",
				"start the agent: jitsi-agent run --etcd ... --host "+host+" (or check that this machine reaches etcd)")
		}
		if bundle != nil {
			out = append(out, crossHostPorts(ctx, &net.Dialer{}, bundle, secret, host, rep)...)
		}
	}
	return out
}

// crossHostPorts dials, from host, the services of the other registered
// hosts that host needs (PeerPorts), at their registered addresses.
func crossHostPorts(ctx context.Context, d Dialer, b *Bundle, secret, host string, rep *Report) []doctor.Result {
	var names []string
	addrs := map[string]string{}
	inGen := false
	for _, h := range rep.Hosts {
		if !h.InGeneration {
			continue
		}
		inGen = inGen || h.Name == host
		names = append(names, h.Name)
		if h.Registered {
			addrs[h.Name] = h.Address
		}
	}
	if !inGen {
		return nil
	}
	deps, err := peerDeployments(b, secret, names)
	if err != nil {
		return []doctor.Result{{ID: "fleet.ports", Title: "cross-host ports", Status: doctor.Fail, Seen: err.Error(), Fix: "fix the spec and push again"}}
	}
	pp := PeerPorts(deps[host], deps, addrs)
	if len(pp) == 0 {
		return []doctor.Result{{ID: "fleet.ports", Title: "cross-host ports", Status: doctor.Pass, Seen: host + " needs no service of another registered host"}}
	}
	return CheckPeerPorts(ctx, d, host, pp, PeerTimeout)
}

// openClusterSecret reads and opens the fleet's cluster secret without
// creating it.
func openClusterSecret(ctx context.Context, st fleetstore.Store, k Key) (string, bool, error) {
	kv, ok, err := st.Get(ctx, keyClusterSecret)
	if err != nil || !ok {
		return "", false, err
	}
	plain, err := k.Open(kv.Value, clusterSecretContext)
	if err != nil {
		return "", true, fmt.Errorf("the fleet's cluster secret %w", err)
	}
	return string(plain), true, nil
}
