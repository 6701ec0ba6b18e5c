package systemd

import (
	"context"
	"errors"
	"fmt"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// ConnectOptions tunes Connect. The zero value connects to the system bus
// with a 5 s connect timeout and 90 s per-job timeout.
type ConnectOptions struct {
	// Address is a D-Bus address ("unix:path=/run/dbus/system_bus_socket").
	// Empty: the system bus ($DBUS_SYSTEM_BUS_ADDRESS or the default socket).
	Address string
	// ConnectTimeout bounds dialing, authentication and the first call.
	ConnectTimeout time.Duration
	// CallTimeout bounds each property read and the queueing of a job.
	CallTimeout time.Duration
	// JobTimeout bounds queueing a job plus waiting for its JobRemoved
	// result, for callers whose ctx has no earlier deadline.
	JobTimeout time.Duration
}

// Default timeouts.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultCallTimeout    = 10 * time.Second
	// DefaultJobTimeout is above systemd's default start timeout (90 s):
	// systemd's own "timeout" result should normally arrive first.
	DefaultJobTimeout = 100 * time.Second
)

// DBus is the go-systemd implementation of Units. It holds one long-lived
// connection pair; Close ends it.
type DBus struct {
	conn   *sddbus.Conn
	cancel context.CancelFunc
	opts   ConnectOptions
}

var _ Units = (*DBus)(nil)

// Connect opens the connection to systemd. The connection lives until Close
// (it does not depend on ctx, which only bounds the connect together with
// ConnectTimeout). Any failure, including a bus without systemd on it, is an
// *UnavailableError (errors.Is(err, ErrUnavailable)); Connect never hangs.
func Connect(ctx context.Context, opts ConnectOptions) (*DBus, error) {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = DefaultJobTimeout
	}
	// godbus closes a connection when the ctx it was dialed with ends, so
	// the connection gets its own lifetime ctx, cancelled by Close (or here
	// when connecting fails or times out).
	life, cancel := context.WithCancel(context.Background())
	type res struct {
		c   *sddbus.Conn
		err error
	}
	done := make(chan res, 1)
	go func() {
		var c *sddbus.Conn
		var err error
		if opts.Address == "" {
			c, err = sddbus.NewSystemConnectionContext(life)
		} else {
			addr := opts.Address
			c, err = sddbus.NewConnection(func() (*dbus.Conn, error) {
				return dbus.Connect(addr, dbus.WithContext(life))
			})
		}
		done <- res{c, err}
	}()
	timer := time.NewTimer(opts.ConnectTimeout)
	defer timer.Stop()
	var r res
	select {
	case r = <-done:
	case <-timer.C:
		cancel()
		return nil, &UnavailableError{Err: fmt.Errorf("connecting to the system bus: no answer within %s", opts.ConnectTimeout)}
	case <-ctx.Done():
		cancel()
		return nil, &UnavailableError{Err: fmt.Errorf("connecting to the system bus: %w", ctx.Err())}
	}
	if r.err != nil {
		cancel()
		return nil, &UnavailableError{Err: fmt.Errorf("connecting to the system bus: %w", r.err)}
	}
	d := &DBus{conn: r.c, cancel: cancel, opts: opts}
	// A bus without systemd on it (containers) answers the dial but not
	// this call: probe once so callers learn it now, not at the first job.
	pctx, pcancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer pcancel()
	if _, err := r.c.SystemStateContext(pctx); err != nil {
		d.Close()
		return nil, &UnavailableError{Err: fmt.Errorf("asking systemd for its state: %w", err)}
	}
	return d, nil
}

// Close ends the connection.
func (d *DBus) Close() {
	d.conn.Close()
	d.cancel()
}

// Connected reports whether the connection is still up.
func (d *DBus) Connected() bool { return d.conn.Connected() }

// Properties implements Units.
func (d *DBus) Properties(ctx context.Context, unit string) (UnitState, error) {
	cctx, cancel := context.WithTimeout(ctx, d.opts.CallTimeout)
	defer cancel()
	props, err := d.conn.GetUnitPropertiesContext(cctx, unit)
	if err != nil {
		return UnitState{}, fmt.Errorf("reading properties of %s: %w", unit, d.mapErr(err))
	}
	st := UnitState{Name: unit}
	st.LoadState, _ = props["LoadState"].(string)
	st.ActiveState, _ = props["ActiveState"].(string)
	st.SubState, _ = props["SubState"].(string)
	st.UnitFileState, _ = props["UnitFileState"].(string)
	st.CanReload, _ = props["CanReload"].(bool)
	return st, nil
}

type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// Start implements Units.
func (d *DBus) Start(ctx context.Context, unit string) error {
	return d.job(ctx, "start", unit, d.conn.StartUnitContext)
}

// Restart implements Units.
func (d *DBus) Restart(ctx context.Context, unit string) error {
	return d.job(ctx, "restart", unit, d.conn.RestartUnitContext)
}

// Reload implements Units. It fails (UnitInactive) on a stopped unit and
// (JobTypeNotApplicable) on a unit without ExecReload: check CanReload and
// ActiveState first.
func (d *DBus) Reload(ctx context.Context, unit string) error {
	return d.job(ctx, "reload", unit, d.conn.ReloadUnitContext)
}

// Enable implements Units.
func (d *DBus) Enable(ctx context.Context, units ...string) error {
	if len(units) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, d.opts.CallTimeout)
	defer cancel()
	if _, _, err := d.conn.EnableUnitFilesContext(cctx, units, false, false); err != nil {
		return fmt.Errorf("enabling %v: %w", units, d.mapErr(err))
	}
	// systemctl enable reloads the manager so that the new symlinks count.
	if err := d.conn.ReloadContext(cctx); err != nil {
		return fmt.Errorf("reloading systemd after enabling %v: %w", units, d.mapErr(err))
	}
	return nil
}

// Stop implements Units.
func (d *DBus) Stop(ctx context.Context, unit string) error {
	return d.job(ctx, "stop", unit, d.conn.StopUnitContext)
}

// Disable implements Units.
func (d *DBus) Disable(ctx context.Context, units ...string) error {
	if len(units) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, d.opts.CallTimeout)
	defer cancel()
	if _, err := d.conn.DisableUnitFilesContext(cctx, units, false); err != nil {
		return fmt.Errorf("disabling %v: %w", units, d.mapErr(err))
	}
	if err := d.conn.ReloadContext(cctx); err != nil {
		return fmt.Errorf("reloading systemd after disabling %v: %w", units, d.mapErr(err))
	}
	return nil
}

// job queues a job and waits for its result: buffered channel (go-systemd
// sends while holding its listener lock, an unread unbuffered channel would
// block every later job), select on the deadline, and watch the connection
// so a vanished bus is an error at once rather than at the deadline.
func (d *DBus) job(ctx context.Context, op, unit string, start jobFunc) error {
	jctx, cancel := context.WithTimeout(ctx, d.opts.JobTimeout)
	defer cancel()
	ch := make(chan string, 1)
	qctx, qcancel := context.WithTimeout(jctx, d.opts.CallTimeout)
	_, err := start(qctx, unit, "replace", ch)
	qcancel()
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, unit, d.mapErr(err))
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-ch:
			if r == "done" {
				return nil
			}
			return &JobError{Unit: unit, Op: op, Result: r}
		case <-jctx.Done():
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &JobError{Unit: unit, Op: op, Err: ctx.Err()}
			}
			return &JobError{Unit: unit, Op: op, Err: fmt.Errorf("%w: %w", ErrJobTimeout, jctx.Err())}
		case <-tick.C:
			if !d.conn.Connected() {
				return &JobError{Unit: unit, Op: op, Err: ErrBusClosed}
			}
		}
	}
}

// mapErr turns systemd's D-Bus error names and a closed connection into the
// package's sentinel errors (keeping the original text).
func (d *DBus) mapErr(err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed":
			return fmt.Errorf("%w: %w", ErrNoSuchUnit, err)
		}
		return err
	}
	var dep *dbus.Error
	if errors.As(err, &dep) && dep.Name == "org.freedesktop.systemd1.NoSuchUnit" {
		return fmt.Errorf("%w: %w", ErrNoSuchUnit, err)
	}
	if !d.conn.Connected() {
		return fmt.Errorf("%w: %w", ErrBusClosed, err)
	}
	return err
}
