// Package membership is the live membership a fleet renders from: which
// hosts run which components in which shard, where the others reach them,
// and whether they report healthy. A View is immutable and deterministic
// (members sorted by shard, then host), so rendering it twice gives the same
// bytes.
//
// Render takes an optional *View (render.Input.Members). Without one it
// derives the static view of the spec's host blocks (FromDeployment), so a
// single-host or static multi-host spec renders exactly as before. In fleet
// mode the view is built from the hosts' registrations (New), and files that
// depend on the live fleet (nginx's colibri-ws routes, Prosody's TURN list,
// the front's HAProxy backends) follow it.
//
// Every field of a member ends up inside rendered configuration files
// (nginx, HAProxy, Lua), so New refuses anything that is not a plain name or
// address: a registration cannot inject configuration.
package membership

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// MaxMembers bounds a view (a registration list read from a store).
const MaxMembers = 4096

// Member is one host of the fleet as the others see it.
type Member struct {
	// Host is the host block's name, unique in the view. It is also the
	// bridge's colibri-ws server id (/colibri-ws/HOST/...).
	Host string
	// Shard is the shard the host belongs to (spec.DefaultShard when the
	// spec names none; "" is read as that).
	Shard string
	// Address is the IP address or DNS name the other hosts reach it at;
	// "" when unknown (usable only by the host itself).
	Address string
	// Roles are the components it runs (spec role names), sorted.
	Roles []string
	// Healthy is the member's own last health report (static members are
	// healthy). Which files leave out unhealthy members is render's
	// decision, documented there.
	Healthy bool
}

// HasRole reports whether the member runs the component.
func (m Member) HasRole(role string) bool { return slices.Contains(m.Roles, role) }

// View is a validated, sorted set of members. The zero value and nil are
// empty views.
type View struct {
	members []Member
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`) })

// ValidName reports whether s may be a member's host or shard name: letters,
// digits, '.', '_' and '-', starting with a letter or digit, at most 63
// characters (it appears in URLs, nginx regular expressions and HAProxy
// server names unquoted).
func ValidName(s string) bool { return nameRE().MatchString(s) }

// ValidAddress reports whether s is an IP address (no zone) or a DNS name.
func ValidAddress(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == ""
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !labelRE().MatchString(l) {
			return false
		}
	}
	return true
}

var labelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`) })

// New validates the members and returns them as a View, sorted by shard
// and host; each member's roles are sorted and deduplicated and an empty
// shard becomes spec.DefaultShard. The input is not modified.
func New(members []Member) (*View, error) {
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("membership: %d members (at most %d)", len(members), MaxMembers)
	}
	out := make([]Member, 0, len(members))
	seen := make(map[string]bool, len(members))
	known := spec.Roles()
	for _, m := range members {
		if !ValidName(m.Host) {
			return nil, fmt.Errorf("membership: host name %q: use letters, digits, '.', '_' and '-' (at most 63)", m.Host)
		}
		if seen[m.Host] {
			return nil, fmt.Errorf("membership: host %q twice", m.Host)
		}
		seen[m.Host] = true
		if m.Shard == "" {
			m.Shard = spec.DefaultShard
		}
		if !ValidName(m.Shard) {
			return nil, fmt.Errorf("membership: host %q: shard name %q: use letters, digits, '.', '_' and '-' (at most 63)", m.Host, m.Shard)
		}
		if m.Address != "" && !ValidAddress(m.Address) {
			return nil, fmt.Errorf("membership: host %q: address %q is neither an IP address nor a DNS name", m.Host, m.Address)
		}
		roles := slices.Clone(m.Roles)
		slices.Sort(roles)
		roles = slices.Compact(roles)
		for _, r := range roles {
			if !slices.Contains(known, r) {
				return nil, fmt.Errorf("membership: host %q: unknown role %q (one of %s)", m.Host, r, strings.Join(known, ", "))
			}
		}
		m.Roles = roles
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if c := strings.Compare(a.Shard, b.Shard); c != 0 {
			return c
		}
		return strings.Compare(a.Host, b.Host)
	})
	return &View{members: out}, nil
}

// FromDeployment is the static view of a spec: one healthy member per host
// block (the implicit host of a spec without host blocks), with its shard,
// address and roles.
func FromDeployment(d *spec.Deployment) (*View, error) {
	hosts := d.Hosts
	if len(hosts) == 0 {
		hosts = []spec.Host{d.Host}
	}
	ms := make([]Member, 0, len(hosts))
	for _, h := range hosts {
		ms = append(ms, Member{Host: h.Name, Shard: h.Shard, Address: h.Address, Roles: h.Roles, Healthy: true})
	}
	return New(ms)
}

// Len is the number of members.
func (v *View) Len() int {
	if v == nil {
		return 0
	}
	return len(v.members)
}

// Members returns every member (a copy), sorted by shard and host.
func (v *View) Members() []Member {
	if v == nil {
		return nil
	}
	return cloneMembers(v.members)
}

// Get returns the named member.
func (v *View) Get(host string) (Member, bool) {
	if v != nil {
		for _, m := range v.members {
			if m.Host == host {
				return cloneMember(m), true
			}
		}
	}
	return Member{}, false
}

// Shards returns the shard names, sorted.
func (v *View) Shards() []string {
	if v == nil {
		return nil
	}
	var out []string
	for _, m := range v.members {
		if len(out) == 0 || out[len(out)-1] != m.Shard {
			out = append(out, m.Shard)
		}
	}
	return out
}

// Select returns the members of shard ("" = every shard) that run role
// ("" = any role), sorted by shard and host.
func (v *View) Select(shard, role string) []Member {
	if v == nil {
		return nil
	}
	var out []Member
	for _, m := range v.members {
		if (shard == "" || m.Shard == shard) && (role == "" || m.HasRole(role)) {
			out = append(out, cloneMember(m))
		}
	}
	return out
}

// Without returns the view minus the named hosts (unknown names are
// ignored).
func (v *View) Without(hosts ...string) *View {
	out := &View{}
	if v == nil {
		return out
	}
	for _, m := range v.members {
		if !slices.Contains(hosts, m.Host) {
			out.members = append(out.members, cloneMember(m))
		}
	}
	return out
}

// Equal reports whether two views have the same members (nil equals an
// empty view): a fleet agent re-renders only when its view changed.
func (v *View) Equal(o *View) bool {
	a, b := v.Members(), o.Members()
	return slices.EqualFunc(a, b, func(x, y Member) bool {
		return x.Host == y.Host && x.Shard == y.Shard && x.Address == y.Address && x.Healthy == y.Healthy && slices.Equal(x.Roles, y.Roles)
	})
}

// String is a one-line summary ("shard/host(roles)@address", unhealthy
// members marked '!'), for logs and test failures.
func (v *View) String() string {
	if v.Len() == 0 {
		return "(no members)"
	}
	parts := make([]string, 0, len(v.members))
	for _, m := range v.members {
		s := m.Shard + "/" + m.Host + "(" + strings.Join(m.Roles, ",") + ")"
		if m.Address != "" {
			s += "@" + m.Address
		}
		if !m.Healthy {
			s += "!"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func cloneMember(m Member) Member {
	m.Roles = slices.Clone(m.Roles)
	return m
}

func cloneMembers(ms []Member) []Member {
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = cloneMember(m)
	}
	return out
}
