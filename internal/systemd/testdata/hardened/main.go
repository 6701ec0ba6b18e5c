// Command hardened is run by TestRealSystemdBox as a service under the
// hardening of systemd/jitsi-agent.service, inside the systemd box. It does
// what the agent does (D-Bus to systemd, chown a file, prosodyctl adduser,
// read the journal) and checks that what must be denied is denied, then
// writes the outcome of each step as JSON and reports READY=1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/jitsi-agent/jitsi-agent/internal/accounts"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/systemd"
)

func main() {
	out := os.Args[1]
	res := map[string]string{}
	step := func(name string, err error) {
		if err != nil {
			res[name] = err.Error()
		} else {
			res[name] = "ok"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	d, err := systemd.Connect(ctx, systemd.ConnectOptions{})
	step("connect", err)
	if err == nil {
		st, err := d.Properties(ctx, "nginx.service")
		if err == nil && st.ActiveState != "active" {
			err = fmt.Errorf("nginx is %s", st.ActiveState)
		}
		step("properties", err)
		step("reload", d.Reload(ctx, "nginx.service"))
		d.Close()
	}

	f := "/run/jt/hardened-owned.txt"
	err = os.WriteFile(f, []byte("x\n"), 0o640)
	if err == nil {
		var u *user.User
		u, err = user.Lookup("prosody")
		if err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			err = os.Chown(f, uid, gid)
		}
	}
	step("write+chown", err)

	// Must be denied: writing outside ReadWritePaths.
	err = os.WriteFile("/etc/jitsi-agent-hardened-probe", []byte("x"), 0o600)
	if err == nil {
		os.Remove("/etc/jitsi-agent-hardened-probe")
		step("etc-readonly", errors.New("/etc was writable"))
	} else if errors.Is(err, syscall.EROFS) {
		step("etc-readonly", nil)
	} else {
		step("etc-readonly", fmt.Errorf("unexpected error: %w", err))
	}

	p := accounts.ProsodyCtl{Config: "/run/jt/prosody/prosody.cfg.lua", DataPath: "/run/jt/prosody/data"}
	m := &accounts.Manager{Prosody: p, StatePath: "/run/jt/hardened-accounts.json"}
	_, err = m.Ensure(ctx, []accounts.Account{{User: "focus", Host: "auth.box.test", Password: spec.NewSecret("hardened-Pass-1")}})
	if err == nil {
		var st accounts.Status
		st, err = p.Check(ctx, "focus", "auth.box.test", spec.NewSecret("hardened-Pass-1"))
		if err == nil && st != accounts.StatusMatches {
			err = fmt.Errorf("account check: %s", st)
		}
	}
	step("prosodyctl", err)

	lines, err := systemd.JournalCtl{}.Tail(ctx, "nginx.service", 5, time.Time{})
	if err == nil && len(lines) == 0 {
		err = errors.New("no journal lines")
	}
	step("journal", err)

	b, _ := json.Marshal(res)
	if err := os.WriteFile(out+".tmp", b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	// Stay up like a daemon until stopped (bounded).
	time.Sleep(2 * time.Minute)
}
