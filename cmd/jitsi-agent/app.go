package main

import (
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/commands"
)

// newApp is the command table (internal/commands) with this program's
// runners: every command. version, completion and man come with the table.
func newApp() *cli.App {
	return commands.App(buildVersion(), commands.Runners{
		"init":           runInit,
		"validate":       runValidate,
		"render":         runRender,
		"plan":           runPlan,
		"apply":          runApply,
		"bootstrap":      runBootstrap,
		"confirm":        runConfirm,
		"rollback":       runRollback,
		"run":            runRun,
		"status":         runStatus,
		"doctor":         runDoctor,
		"support-bundle": runSupportBundle,
		"services":       runServices,
		"certs":          runCerts,
		"token mint":     runTokenMint,
		"token verify":   runTokenVerify,
		"token serve":    runTokenServe,
		"fmt":            runFmt,
		"fleet keygen":   runFleetKeygen,
		"fleet push":     runFleetPush,
		"fleet status":   runFleetStatus,
		"fleet doctor":   runFleetDoctor,
		"fleet grant":    runFleetGrant,
		"fleet rollback": runFleetRollback,
		"import":         runImport,
		"unit":           runUnit,
	}, nil)
}
