// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package systemd drives one systemd instance (the system manager, or a
// user's) over D-Bus for the Module controller: unit files in its unit
// folder, daemon-reload, enable/disable, start/stop/restart, unit state, and
// change notifications from systemd's PropertiesChanged signals (no
// polling). It reconnects by itself when the bus goes away (systemd
// re-executing, dbus restarting) and then asks the caller to look at
// everything again.
//
// Root lets the daemon drive a systemd that lives in other namespaces, as
// the tests do with a sandboxed systemd: its bus socket, unit folder and
// journal are found below Root (/proc/<pid>/root), while the paths systemd
// itself reports stay its own.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/go-logr/logr"
	"github.com/godbus/dbus/v5"

	"github.com/reconciled/reconciled/internal/backoff"
)

// Scopes.
const (
	ScopeSystem = "system"
	ScopeUser   = "user"
)

// Options configures a Manager.
type Options struct {
	// Scope is ScopeSystem (default) or ScopeUser.
	Scope string
	// Root is the root directory of the systemd instance as this process
	// sees it: "" or "/" for the host's own, /proc/<pid>/root for one in
	// other namespaces. It locates the system bus, the system unit folder
	// and the journal.
	Root string
	// BusAddress overrides the bus (a D-Bus address such as
	// unix:path=/run/dbus/system_bus_socket). Default: the system bus below
	// Root, or for the user scope $DBUS_SESSION_BUS_ADDRESS, else
	// $XDG_RUNTIME_DIR/bus.
	BusAddress string
	// UnitDir overrides where unit files are written. Default:
	// <Root>/etc/systemd/system, or for the user scope
	// $XDG_CONFIG_HOME/systemd/user (~/.config/systemd/user).
	UnitDir string
	Log     logr.Logger
}

// UnitState is what the controller reads about one unit.
type UnitState struct {
	LoadState, ActiveState, SubState string
	// FragmentPath is the unit file as systemd names it.
	FragmentPath string
	// UnitFileState is enabled, disabled, static, ...
	UnitFileState    string
	NeedDaemonReload bool
	// JobPending is set while a job (start, stop, ...) is queued for the
	// unit: its state is about to change.
	JobPending bool
	MainPID    int
	NRestarts  int64
	// Result is the service's result: success, exit-code, signal, ...
	Result string
	// Since is when ActiveState last changed.
	Since time.Time
}

// Manager is a connection to one systemd instance. Methods fail with
// ErrNotConnected while the bus is down; Run reconnects.
type Manager struct {
	opts    Options
	address string
	unitDir string

	mu   sync.Mutex
	conn *sddbus.Conn
	up   chan struct{} // closed when conn is set; replaced when it is lost
}

// ErrNotConnected is returned while there is no bus connection.
var ErrNotConnected = errors.New("not connected to systemd")

// New returns a Manager; call Run to connect.
func New(o Options) (*Manager, error) {
	if o.Scope == "" {
		o.Scope = ScopeSystem
	}
	if o.Root == "" {
		o.Root = "/"
	}
	m := &Manager{opts: o, address: o.BusAddress, unitDir: o.UnitDir, up: make(chan struct{})}
	switch o.Scope {
	case ScopeSystem:
		if m.address == "" {
			m.address = "unix:path=" + filepath.Join(o.Root, "run/dbus/system_bus_socket")
		}
		if m.unitDir == "" {
			m.unitDir = filepath.Join(o.Root, "etc/systemd/system")
		}
	case ScopeUser:
		if m.address == "" {
			m.address = os.Getenv("DBUS_SESSION_BUS_ADDRESS")
		}
		if m.address == "" {
			if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
				m.address = "unix:path=" + filepath.Join(rt, "bus")
			}
		}
		if m.address == "" {
			return nil, errors.New("user scope: no session bus (set DBUS_SESSION_BUS_ADDRESS or XDG_RUNTIME_DIR)")
		}
		if m.unitDir == "" {
			cfg, err := os.UserConfigDir()
			if err != nil {
				return nil, fmt.Errorf("user scope: %w", err)
			}
			m.unitDir = filepath.Join(cfg, "systemd/user")
		}
	default:
		return nil, fmt.Errorf("unknown scope %q", o.Scope)
	}
	return m, nil
}

// Scope returns the manager's scope.
func (m *Manager) Scope() string { return m.opts.Scope }

// UnitDir returns the folder unit files are written to, as this process
// sees it.
func (m *Manager) UnitDir() string { return m.unitDir }

// Address returns the bus address.
func (m *Manager) Address() string { return m.address }

// dial connects and authenticates to the bus.
func (m *Manager) dial(ctx context.Context) (*sddbus.Conn, error) { return Dial(ctx, m.address) }

// Dial connects to systemd through the D-Bus bus at address
// ("unix:path=..."), authenticating with EXTERNAL as the current uid: what
// go-systemd's NewSystemConnectionContext does for the default system bus,
// for any bus.
func Dial(ctx context.Context, address string) (*sddbus.Conn, error) {
	return sddbus.NewConnection(func() (*dbus.Conn, error) {
		c, err := dbus.Dial(address, dbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.Hello(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
}

// reconnectBackoff spaces the connection attempts to a systemd that does
// not answer.
var reconnectBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}

// Run keeps a connection with a signal subscription until ctx is done.
// changed is called (from one goroutine) with the name of every unit whose
// properties change; resync is called after every (re)connection and when
// signals were dropped, when the caller must look at all its units again.
func (m *Manager) Run(ctx context.Context, changed func(unit string), resync func()) {
	failures := 0
	for ctx.Err() == nil {
		var updates chan *sddbus.PropertiesUpdate
		var errs chan error
		conn, err := m.dial(ctx)
		if err == nil {
			// The subscriber is set before Subscribe: go-systemd's
			// dispatch goroutine reads it without a lock once signals
			// flow.
			updates = make(chan *sddbus.PropertiesUpdate, 16384) // a burst of 200 new units is a few thousand signals
			errs = make(chan error, 1)
			conn.SetPropertiesSubscriber(updates, errs)
			err = conn.Subscribe()
			if err != nil {
				conn.Close()
			}
		}
		if err != nil {
			if failures++; failures == 1 {
				m.opts.Log.Info("cannot connect to systemd; Modules of this scope wait until it answers", "scope", m.opts.Scope, "address", m.address, "error", err.Error())
			} else {
				m.opts.Log.V(1).Info("cannot connect to systemd; retrying", "scope", m.opts.Scope, "error", err.Error(), "in", reconnectBackoff.Delay(failures))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(reconnectBackoff.Delay(failures)):
			}
			continue
		}
		failures = 0
		m.mu.Lock()
		m.conn = conn
		close(m.up)
		m.mu.Unlock()
		m.opts.Log.Info("connected to systemd", "scope", m.opts.Scope, "address", m.address)
		resync()
		m.dispatch(ctx, conn, updates, errs, changed, resync)
		m.mu.Lock()
		m.conn = nil
		m.up = make(chan struct{})
		m.mu.Unlock()
		conn.Close()
	}
}

// dispatch delivers signals until the connection drops or ctx is done.
func (m *Manager) dispatch(ctx context.Context, conn *sddbus.Conn, updates <-chan *sddbus.PropertiesUpdate, errs <-chan error, changed func(string), resync func()) {
	check := time.NewTicker(2 * time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			changed(u.UnitName)
		case err := <-errs:
			m.opts.Log.Info("systemd signals were dropped; looking at every unit again", "error", err.Error())
			resync()
		case <-check.C:
			// go-systemd does not tell when the bus goes away.
			if !conn.Connected() {
				m.opts.Log.Info("lost the connection to systemd; reconnecting", "scope", m.opts.Scope)
				return
			}
		}
	}
}

// Connected reports whether the manager has a bus connection now.
func (m *Manager) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn != nil
}

// Wait blocks until the manager is connected or ctx is done.
func (m *Manager) Wait(ctx context.Context) error {
	m.mu.Lock()
	up := m.up
	m.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) connection() (*sddbus.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return nil, ErrNotConnected
	}
	return m.conn, nil
}

// systemSearchPath is where the system manager looks for units
// (systemd.unit(5)), below Root.
var systemSearchPath = []string{
	"/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
	"/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached",
	"/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
	"/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
	"/run/systemd/generator.late",
}

// OtherDefinitions returns the files, other than ours, that define unit or
// add drop-ins to it in the manager's search path: a unit reconciled must
// not write over or beside. It reads the file system, not systemd, so it
// does not wait behind a daemon-reload.
func (m *Manager) OtherDefinitions(unit string) []string {
	var dirs []string
	if m.opts.Scope == ScopeSystem {
		for _, d := range systemSearchPath {
			dirs = append(dirs, filepath.Join(m.opts.Root, d))
		}
	} else {
		home, _ := os.UserHomeDir()
		cfg, _ := os.UserConfigDir()
		rt := os.Getenv("XDG_RUNTIME_DIR")
		data := os.Getenv("XDG_DATA_HOME")
		if data == "" && home != "" {
			data = filepath.Join(home, ".local/share")
		}
		for _, d := range []string{cfg + "/systemd/user.control", rt + "/systemd/user.control", rt + "/systemd/transient",
			rt + "/systemd/generator.early", cfg + "/systemd/user", "/etc/systemd/user", rt + "/systemd/user", "/run/systemd/user",
			rt + "/systemd/generator", data + "/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user",
			rt + "/systemd/generator.late"} {
			if filepath.IsAbs(d) {
				dirs = append(dirs, d)
			}
		}
	}
	ours := filepath.Join(m.unitDir, unit)
	var found []string
	for _, d := range dirs {
		for _, p := range []string{filepath.Join(d, unit), filepath.Join(d, unit+".d")} {
			if p == ours {
				continue
			}
			if _, err := os.Lstat(p); err == nil {
				found = append(found, strings.TrimPrefix(p, strings.TrimSuffix(m.opts.Root, "/")))
			}
		}
	}
	return found
}

// IsNoSuchUnit reports whether err is systemd saying the unit is not
// loaded (stopping such a unit has nothing to do).
func IsNoSuchUnit(err error) bool {
	var de dbus.Error
	var dp *dbus.Error
	switch {
	case errors.As(err, &de):
		return de.Name == "org.freedesktop.systemd1.NoSuchUnit" || de.Name == "org.freedesktop.systemd1.LoadFailed"
	case errors.As(err, &dp):
		return dp.Name == "org.freedesktop.systemd1.NoSuchUnit" || dp.Name == "org.freedesktop.systemd1.LoadFailed"
	}
	return err != nil && strings.Contains(err.Error(), "not loaded")
}

// Reload runs daemon-reload and waits for it.
func (m *Manager) Reload(ctx context.Context) error {
	c, err := m.connection()
	if err != nil {
		return err
	}
	return c.ReloadContext(ctx)
}

// Start queues a start job for unit (mode replace) without waiting for it:
// its outcome arrives as property changes.
func (m *Manager) Start(ctx context.Context, unit string) error {
	return m.job(ctx, unit, (*sddbus.Conn).StartUnitContext)
}

// Stop queues a stop job for unit.
func (m *Manager) Stop(ctx context.Context, unit string) error {
	return m.job(ctx, unit, (*sddbus.Conn).StopUnitContext)
}

// Restart queues a restart job for unit.
func (m *Manager) Restart(ctx context.Context, unit string) error {
	return m.job(ctx, unit, (*sddbus.Conn).RestartUnitContext)
}

func (m *Manager) job(ctx context.Context, unit string, fn func(*sddbus.Conn, context.Context, string, string, chan<- string) (int, error)) error {
	c, err := m.connection()
	if err != nil {
		return err
	}
	_, err = fn(c, ctx, unit, "replace", nil)
	return err
}

// ResetFailed clears a failed unit's state, so it can be started again.
func (m *Manager) ResetFailed(ctx context.Context, unit string) error {
	c, err := m.connection()
	if err != nil {
		return err
	}
	return c.ResetFailedUnitContext(ctx, unit)
}

// Enable enables unit (its [Install] section) for the next boot.
func (m *Manager) Enable(ctx context.Context, unit string) error {
	c, err := m.connection()
	if err != nil {
		return err
	}
	_, _, err = c.EnableUnitFilesContext(ctx, []string{unit}, false, true)
	return err
}

// Disable disables unit.
func (m *Manager) Disable(ctx context.Context, unit string) error {
	c, err := m.connection()
	if err != nil {
		return err
	}
	_, err = c.DisableUnitFilesContext(ctx, []string{unit}, false)
	return err
}

// State reads the unit's current state in one call.
func (m *Manager) State(ctx context.Context, unit string) (UnitState, error) {
	c, err := m.connection()
	if err != nil {
		return UnitState{}, err
	}
	p, err := c.GetAllPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, err
	}
	st := UnitState{
		LoadState:        str(p["LoadState"]),
		ActiveState:      str(p["ActiveState"]),
		SubState:         str(p["SubState"]),
		FragmentPath:     str(p["FragmentPath"]),
		UnitFileState:    str(p["UnitFileState"]),
		NeedDaemonReload: p["NeedDaemonReload"] == true,
		Result:           str(p["Result"]),
	}
	if job, ok := p["Job"].([]any); ok && len(job) > 0 {
		if id, ok := job[0].(uint32); ok && id != 0 {
			st.JobPending = true
		}
	}
	if v, ok := p["MainPID"].(uint32); ok {
		st.MainPID = int(v)
	}
	if v, ok := p["NRestarts"].(uint32); ok {
		st.NRestarts = int64(v)
	}
	if v, ok := p["StateChangeTimestamp"].(uint64); ok && v > 0 {
		st.Since = time.UnixMicro(int64(v))
	}
	return st, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Journal returns the last n lines of the unit's journal, oldest first
// (journalctl -u UNIT, or --user-unit for the user scope).
func (m *Manager) Journal(ctx context.Context, unit string, n int) ([]string, error) {
	args := []string{"--no-pager", "-q", "-o", "short-iso", "-n", strconv.Itoa(n)}
	if m.opts.Root != "/" {
		args = append(args, "--root", m.opts.Root)
	}
	if m.opts.Scope == ScopeUser {
		args = append(args, "--user-unit", unit)
	} else {
		args = append(args, "-u", unit)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "journalctl", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, fmt.Errorf("journalctl: %s", strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}
