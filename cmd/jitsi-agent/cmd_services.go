package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/deferred"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

type serviceStatus struct {
	Component string             `json:"component"`
	Unit      string             `json:"unit"`
	Enabled   bool               `json:"enabled_in_spec"`
	Restart   string             `json:"restart_policy"`
	HealthURL string             `json:"health_url,omitempty"`
	State     *systemd.UnitState `json:"state,omitempty"`
	Problem   string             `json:"problem,omitempty"`
}

type servicesReport struct {
	Systemd  string             `json:"systemd"` // "ok" or why not
	Services []serviceStatus    `json:"services"`
	Deferred []deferred.Restart `json:"deferred_restarts"`
}

func runServices(c *cli.Call) int {
	stdout, stderr := c.Stdout, c.Stderr
	root, asJSON := c.String("root"), c.Bool("json")
	pos := c.Args
	var err error
	d, ok := loadSpec(c, pos[0])
	if !ok {
		return exitError
	}
	rep := servicesReport{Systemd: "ok"}
	code := exitOK

	rep.Deferred, err = deferred.Load(deferred.Path(agent.StateDir(d, root)))
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if len(rep.Deferred) > 0 {
		code = exitChanges
	}

	svcs := systemd.ServicesFor(d)
	var units systemd.Units
	if root != "" && root != "/" {
		rep.Systemd = "not queried for --root " + root
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := systemd.Connect(ctx, systemd.ConnectOptions{})
		if err != nil {
			rep.Systemd = err.Error()
			if !asJSON {
				fmt.Fprintln(stderr, "notice: "+err.Error()+"; showing the spec's view only")
			}
			code = exitError
		} else {
			defer conn.Close()
			units = conn
		}
	}

	for _, c := range spec.Components {
		s, ok := svcs[c]
		if !ok {
			continue
		}
		st := serviceStatus{Component: c, Unit: s.Unit, Enabled: s.Enabled, Restart: s.Restart, HealthURL: s.HealthURL}
		if units != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			us, err := units.Properties(ctx, s.Unit)
			cancel()
			switch {
			case err != nil:
				st.Problem = err.Error()
				code = exitError
			default:
				st.State = &us
				switch {
				case !us.Known():
					if s.Enabled {
						st.Problem = "unit not installed"
						code = worse(code, exitChanges)
					}
				case s.Enabled && !us.Running():
					st.Problem = "enabled in the spec but " + us.ActiveState + " (apply starts it)"
					code = worse(code, exitChanges)
				case s.Enabled && !us.IsEnabled():
					st.Problem = "not enabled at boot (apply enables it)"
					code = worse(code, exitChanges)
				}
			}
		}
		rep.Services = append(rep.Services, st)
	}

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitError
		}
		return code
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tUNIT\tSPEC\tRESTART\tSTATE\tBOOT\tRELOAD\tNOTE")
	for _, s := range rep.Services {
		spec := "disabled"
		if s.Enabled {
			spec = "enabled"
		}
		state, boot, reload := "-", "-", "-"
		if s.State != nil {
			state = s.State.ActiveState
			if s.State.SubState != "" {
				state += " (" + s.State.SubState + ")"
			}
			boot = s.State.UnitFileState
			if boot == "" {
				boot = "-"
			}
			reload = "no"
			if s.State.CanReload {
				reload = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Component, s.Unit, spec, s.Restart, state, boot, reload, s.Problem)
	}
	tw.Flush()
	if len(rep.Deferred) > 0 {
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "Deferred restarts (restarting ends every running meeting; run 'jitsi-agent apply --restart-deferred'):")
		for _, x := range rep.Deferred {
			fmt.Fprintf(stdout, "  %s (%s) pending since %s\n", x.Unit, x.Component, x.Since.Format(time.RFC3339))
		}
	}
	return code
}

func worse(a, b int) int {
	if a == exitError || b == exitError {
		return exitError
	}
	if a == exitChanges || b == exitChanges {
		return exitChanges
	}
	return exitOK
}
