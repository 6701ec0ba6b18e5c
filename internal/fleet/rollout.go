package fleet

import "fmt"

// MayApply decides whether host may take generation g now: every live
// host (registered) of a lower wave must run g and be healthy. A host that
// failed g, or is unhealthy on it, stops the rollout there; hosts not
// registered (down) do not hold it up. waiting names what holds it.
func MayApply(g *Generation, host string, hosts map[string]*HostRecord) (ok bool, waiting string) {
	me, found := g.Host(host)
	if !found {
		return false, fmt.Sprintf("host %q is not in generation %d", host, g.Number)
	}
	for _, p := range g.Hosts {
		if p.Wave >= me.Wave {
			continue
		}
		r, live := hosts[p.Name]
		if !live {
			continue
		}
		switch {
		case r.Generation != g.Number && r.Target == g.Number && r.LastError != "":
			return false, fmt.Sprintf("%s failed generation %d: rollout stopped", p.Name, g.Number)
		case r.Generation != g.Number:
			return false, fmt.Sprintf("%s (wave %d) to run generation %d", p.Name, p.Wave, g.Number)
		case !r.Healthy:
			return false, fmt.Sprintf("%s (wave %d) to be healthy on generation %d", p.Name, p.Wave, g.Number)
		}
	}
	return true, ""
}
