package certs

import (
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Report is what `jitsi-agent certs` shows: the deployed certificates and
// the Manager's recorded status.
type Report struct {
	ACME         bool          `json:"acme"`
	DirectoryURL string        `json:"directory_url,omitempty"`
	StatePath    string        `json:"state_path,omitempty"`
	Certificates []ReportEntry `json:"certificates"`
}

// ReportEntry describes one slot.
type ReportEntry struct {
	Name        string    `json:"name"`
	KeyType     KeyType   `json:"key_type"`
	Path        string    `json:"path"`
	Deployed    bool      `json:"deployed"`
	Placeholder bool      `json:"placeholder,omitempty"`
	Names       []string  `json:"names,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	Serial      string    `json:"serial,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	ExpiresIn   float64   `json:"expiry_seconds"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Problem is why the deployed files could not be read.
	Problem string `json:"problem,omitempty"`
}

// Warn reports whether the entry needs attention: missing, placeholder,
// unreadable, failing, expired or expiring within a week.
func (e ReportEntry) Warn() bool {
	return !e.Deployed || e.Placeholder || e.Problem != "" || e.LastError != "" || e.ExpiresIn < 7*24*3600
}

// BuildReport reads the deployed certificate files and the state file
// under root. It never contacts a CA and never reads key material beyond
// checking that the deployed key matches.
func BuildReport(d *spec.Deployment, root string, now time.Time) (Report, error) {
	r := Report{ACME: d.TLS.ACME != nil}
	var st *State
	if r.ACME {
		r.DirectoryURL = DirectoryURL(d)
		r.StatePath = StatePath(d, root)
		var err error
		if st, err = ReadState(r.StatePath); err != nil {
			return r, err
		}
		if st != nil && st.DirectoryURL != r.DirectoryURL {
			st = nil // recorded for another CA
		}
	}
	renewBefore := time.Duration(0)
	if d.TLS.ACME != nil {
		renewBefore = min(max(d.TLS.ACME.RenewBefore, 0), 30*24*time.Hour)
	}
	for _, s := range Slots(d) {
		p := PathsFor(d, s)
		e := ReportEntry{Name: s.Name, KeyType: s.Key, Path: p.NginxCert}
		b, err := readDeployed(root, s, p)
		switch {
		case err != nil:
			e.Problem = err.Error()
		case b == nil:
			// not deployed yet
		default:
			e.Deployed = true
			e.Placeholder = b.Placeholder
			e.Names = b.Leaf.DNSNames
			e.Issuer = issuerName(b.Leaf)
			e.Serial = b.Leaf.SerialNumber.Text(16)
			e.NotAfter = b.Leaf.NotAfter.UTC()
			e.ExpiresIn = b.Leaf.NotAfter.Sub(now).Seconds()
			if r.ACME && !b.Placeholder {
				th := min(b.Leaf.NotAfter.Sub(b.Leaf.NotBefore)/3, 30*24*time.Hour)
				if renewBefore > 0 {
					th = renewBefore
				}
				e.NextRenewal = b.Leaf.NotAfter.Add(-th).UTC()
			}
		}
		if st != nil {
			if c, ok := st.Lookup(s); ok {
				e.LastError, e.LastErrorAt, e.NextAttempt = c.LastError, c.LastErrorAt, c.NextAttempt
				if c.Serial != "" && c.Serial == e.Serial && !c.RenewAt.IsZero() {
					e.NextRenewal = c.RenewAt
				}
			}
		}
		r.Certificates = append(r.Certificates, e)
	}
	return r, nil
}
