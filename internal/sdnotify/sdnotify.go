// Package sdnotify is a thin layer over go-systemd's daemon package: the
// readiness, reload, stop, status and watchdog messages a Type=notify (or
// notify-reload) service sends. Outside systemd (no NOTIFY_SOCKET) every call
// is a no-op that returns nil.
package sdnotify

import (
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify messages to $NOTIFY_SOCKET. The zero value is
// ready to use.
type Notifier struct{}

// New returns a Notifier.
func New() *Notifier { return &Notifier{} }

// Ready says startup (or a reload) finished, with an optional status line.
func (n *Notifier) Ready(status string) error {
	return send(daemon.SdNotifyReady + "\n" + statusLine(status))
}

// Reloading says a reload started. It carries MONOTONIC_USEC, which
// Type=notify-reload requires (without it `systemctl reload` hangs until its
// timeout). Send Ready when the reload is over.
func (n *Notifier) Reloading(status string) error {
	return send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + statusLine(status))
}

// Stopping says shutdown started.
func (n *Notifier) Stopping(status string) error {
	return send(daemon.SdNotifyStopping + "\n" + statusLine(status))
}

// Status sets the free-form status systemctl status shows.
func (n *Notifier) Status(status string) error {
	return send(statusLine(status))
}

// Watchdog pings the service watchdog.
func (n *Notifier) Watchdog() error {
	return send(daemon.SdNotifyWatchdog + "\n")
}

// WatchdogInterval returns WATCHDOG_USEC as a duration, or 0 when the
// watchdog is off or meant for another process (WATCHDOG_PID). Ping at half
// of it.
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("sdnotify: %w", err)
	}
	return d, nil
}

func statusLine(s string) string {
	if s == "" {
		return ""
	}
	// One line: a newline would start another assignment.
	s = strings.Join(strings.Fields(s), " ")
	return "STATUS=" + s + "\n"
}

func send(state string) error {
	if state == "" {
		return nil
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}
