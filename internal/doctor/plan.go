package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// PlanSummary is what the plan check needs from the plan package.
type PlanSummary struct {
	// Changes is the number of managed files that would be created,
	// updated or removed by 'jitsi-agent apply'.
	Changes int
	// Drift is how many of those were changed on the host outside
	// jitsi-agent (a subset of, or in addition to, Changes).
	Drift int
	// DriftPaths names drifted files (optional, for the report).
	DriftPaths []string
	// PendingRestarts lists units whose restart was deferred (restart =
	// "defer") and has not happened yet.
	PendingRestarts []string
}

// Planner compares the desired state with the host. The lead wires the plan
// package; the doctor only reads the summary.
type Planner interface {
	Summary(ctx context.Context) (PlanSummary, error)
}

func checkSpec(d *spec.Deployment, si SpecInfo) Result {
	const id, title = "spec.valid", "Spec is valid"
	if d == nil || !si.Valid {
		return fail(id, title, fmt.Sprintf("%s has errors (printed above)", si.Path),
			"correct the errors reported for "+si.Path+" and run the doctor again")
	}
	var notes []string
	if si.Warnings > 0 {
		notes = append(notes, fmt.Sprintf("%d warning(s) (printed above)", si.Warnings))
	}
	if d.Auth.JWT != nil && d.Auth.JWT.AppSecretInline {
		notes = append(notes, "auth.jwt.app_secret is written inline in the spec")
	}
	if len(notes) > 0 {
		return warn(id, title, si.Path+" is valid; "+strings.Join(notes, "; "),
			"address the warnings; keep the app secret out of the spec with env(\"...\") or file(\"...\")")
	}
	return pass(id, title, si.Path+" parsed and validated")
}

func (c *checker) checkPlan(ctx context.Context) Result {
	const id, title = "plan.clean", "Host matches the spec"
	if c.opts.RenderErr != nil {
		return fail(id, title, "cannot render the desired state: "+c.opts.RenderErr.Error(),
			"fix the error above (state directory "+c.d.StateDir+" readable, templates valid), then run 'jitsi-agent plan'")
	}
	if c.env.Planner == nil {
		return skip(id, title, "plan not available in this build")
	}
	s, err := c.env.Planner.Summary(ctx)
	if err != nil {
		return fail(id, title, "plan failed: "+err.Error(), "run 'jitsi-agent plan' to see the full error and fix it")
	}
	var parts []string
	if s.Changes > 0 {
		parts = append(parts, fmt.Sprintf("%d pending change(s)", s.Changes))
	}
	if s.Drift > 0 {
		d := fmt.Sprintf("%d file(s) drifted", s.Drift)
		if len(s.DriftPaths) > 0 {
			d += " (" + joinMax(s.DriftPaths, 5) + ")"
		}
		parts = append(parts, d)
	}
	if len(s.PendingRestarts) > 0 {
		parts = append(parts, "deferred restart pending for "+strings.Join(s.PendingRestarts, ", "))
	}
	if len(parts) == 0 {
		return pass(id, title, "no changes, no drift, no pending restarts")
	}
	var fixes []string
	if s.Changes > 0 || s.Drift > 0 {
		fixes = append(fixes, "review with 'jitsi-agent plan', then 'jitsi-agent apply'")
	}
	if len(s.PendingRestarts) > 0 {
		fixes = append(fixes, "restart "+strings.Join(s.PendingRestarts, ", ")+" when no meeting is running (systemctl restart UNIT)")
	}
	return warn(id, title, strings.Join(parts, "; "), strings.Join(fixes, "; "))
}

// joinMax joins at most n items and says how many were left out.
func joinMax(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
