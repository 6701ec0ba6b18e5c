package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSON writes the versioned JSON report (see the package doc).
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("write plan JSON: %w", err)
	}
	return nil
}

var symbols = map[Action]string{
	ActionCreate: "+", ActionUpdate: "~", ActionMode: "~", ActionOwner: "~",
	ActionSymlink: "~", ActionUnmanage: "-",
}

// Line is the one-line description of a change, as printed in plan output
// and apply progress ("update /etc/x (spec-changed)").
func (c *Change) Line() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", c.Action, c.Path)
	if c.WritePath != "" {
		fmt.Fprintf(&sb, " (via link to %s)", c.WritePath)
	}
	fmt.Fprintf(&sb, " (%s)", c.Reason)
	return sb.String()
}

// WriteText writes the human-readable plan.
func (p *Plan) WriteText(w io.Writer) error {
	var sb strings.Builder
	if !p.HasChanges() {
		sb.WriteString("No changes. The host matches the spec.\n")
	} else {
		for _, c := range p.Changes {
			fmt.Fprintf(&sb, "%s %s\n", symbols[c.Action], c.Line())
			if c.Detail != "" {
				fmt.Fprintf(&sb, "    %s\n", c.Detail)
			}
			if c.Mode != nil {
				fmt.Fprintf(&sb, "    mode %s -> %s\n", c.Mode.From, c.Mode.To)
			}
			if c.Owner != nil {
				fmt.Fprintf(&sb, "    owner %s -> %s\n", c.Owner.From, c.Owner.To)
			}
			if c.Target != nil {
				from := c.Target.From
				if from == "" {
					from = "(none)"
				}
				fmt.Fprintf(&sb, "    link %s -> %s\n", from, c.Target.To)
			}
			if c.Diff != "" {
				sb.WriteString(c.Diff)
			}
			sb.WriteString("\n")
		}
		s := p.Summary
		fmt.Fprintf(&sb, "Plan: %d to create, %d to update, %d mode, %d owner, %d link, %d to unmanage (%d changes).\n",
			s.Create, s.Update, s.Mode, s.Owner, s.Symlink, s.Unmanage, s.Total)
		if len(p.Units) > 0 {
			fmt.Fprintf(&sb, "Units to reload after apply: %s\n", strings.Join(p.Units, ", "))
		}
	}
	for _, l := range p.Live {
		switch l.Effect {
		case "restart":
			fmt.Fprintf(&sb, "Live effect on %s: RESTART (ends every session and meeting):\n", l.Unit)
		case "deferred-restart":
			fmt.Fprintf(&sb, "Live effect on %s: restart needed, deferred (restart = \"defer\"); the running server keeps the old config until 'apply --restart-deferred':\n", l.Unit)
		default:
			fmt.Fprintf(&sb, "Live effect on %s: applied live, no session ends:\n", l.Unit)
		}
		for _, st := range l.Steps {
			fmt.Fprintf(&sb, "    %s\n", st)
		}
	}
	for _, r := range p.PendingRestarts {
		fmt.Fprintf(&sb, "Deferred restart pending: %s (%s, since %s); 'jitsi-agent apply --restart-deferred' runs it (ends running meetings)\n",
			r.Unit, r.Reason, r.Since.UTC().Format(time.RFC3339))
	}
	for _, n := range p.Notices {
		fmt.Fprintf(&sb, "Notice: %s\n", n)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
