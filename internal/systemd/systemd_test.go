// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package systemd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/godbus/dbus/v5"

	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

func TestNewDefaults(t *testing.T) {
	m, err := systemd.New(systemd.Options{Root: "/proc/42/root"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Scope() != systemd.ScopeSystem || m.Address() != "unix:path=/proc/42/root/run/dbus/system_bus_socket" || m.UnitDir() != "/proc/42/root/etc/systemd/system" {
		t.Errorf("system scope below a root: %s %s %s", m.Scope(), m.Address(), m.UnitDir())
	}

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	t.Setenv("XDG_CONFIG_HOME", "/home/u/.config")
	m, err = systemd.New(systemd.Options{Scope: systemd.ScopeUser})
	if err != nil {
		t.Fatal(err)
	}
	if m.Address() != "unix:path=/run/user/1000/bus" || m.UnitDir() != "/home/u/.config/systemd/user" {
		t.Errorf("user scope: %s %s", m.Address(), m.UnitDir())
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/bus")
	if m, _ = systemd.New(systemd.Options{Scope: systemd.ScopeUser}); m.Address() != "unix:path=/tmp/bus" {
		t.Errorf("user scope ignores DBUS_SESSION_BUS_ADDRESS: %s", m.Address())
	}

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	if _, err := systemd.New(systemd.Options{Scope: systemd.ScopeUser}); err == nil || !strings.Contains(err.Error(), "no session bus") {
		t.Errorf("user scope without a bus: %v", err)
	}
	if _, err := systemd.New(systemd.Options{Scope: "machine"}); err == nil {
		t.Error("unknown scope accepted")
	}
}

// OtherDefinitions finds a unit or its drop-ins anywhere in the system
// search path below Root, except the file reconciled itself writes.
func TestOtherDefinitions(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{
		"usr/lib/systemd/system/vendor.service",
		"etc/systemd/system/ours.service", // our own file: not "other"
		"run/systemd/system/ours.service.d/override.conf",
		"etc/systemd/system/dropin.service.d/x.conf",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := systemd.New(systemd.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	for unit, want := range map[string][]string{
		"vendor.service": {"/usr/lib/systemd/system/vendor.service"},
		"ours.service":   {"/run/systemd/system/ours.service.d"},
		"dropin.service": {"/etc/systemd/system/dropin.service.d"},
		"free.service":   nil,
	} {
		if got := m.OtherDefinitions(unit); !slices.Equal(got, want) {
			t.Errorf("OtherDefinitions(%s) = %q, want %q", unit, got, want)
		}
	}
}

func TestIsNoSuchUnit(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{dbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}, true},
		{&dbus.Error{Name: "org.freedesktop.systemd1.LoadFailed"}, true},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied"}, false},
		{errors.New("Unit web.service not loaded."), true},
		{systemd.ErrNotConnected, false},
		{nil, false},
	} {
		if got := systemd.IsNoSuchUnit(tc.err); got != tc.want {
			t.Errorf("IsNoSuchUnit(%v) = %v", tc.err, got)
		}
	}
}

// Before a connection every call fails with ErrNotConnected; Run against a
// bus that is not there keeps trying without connecting and returns when
// its context ends.
func TestNotConnected(t *testing.T) {
	m, err := systemd.New(systemd.Options{BusAddress: "unix:path=" + filepath.Join(t.TempDir(), "nobus"), UnitDir: t.TempDir(), Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"reload": func() error { return m.Reload(ctx) },
		"start":  func() error { return m.Start(ctx, "x.service") },
		"enable": func() error { return m.Enable(ctx, "x.service") },
		"state":  func() error { _, err := m.State(ctx, "x.service"); return err },
	} {
		if err := call(); !errors.Is(err, systemd.ErrNotConnected) {
			t.Errorf("%s before connecting: %v", name, err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	resyncs := 0
	go func() { m.Run(runCtx, func(string) {}, func() { resyncs++ }); close(done) }()
	waitCtx, waitCancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer waitCancel()
	if err := m.Wait(waitCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with no bus: %v", err)
	}
	if m.Connected() {
		t.Error("connected to a bus that does not exist")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	if resyncs != 0 {
		t.Errorf("%d resyncs without a connection", resyncs)
	}
}

// The Manager against a real systemd (a sandbox in its own namespaces):
// a unit file written, reloaded, enabled, started, restarted and stopped,
// each change arriving as a signal, with its state, its journal, and the
// error of a unit systemd does not know.
func TestManagerDrivesSystemd(t *testing.T) {
	s := systemdtest.Start(t)
	m, err := systemd.New(systemd.Options{Root: s.Root, BusAddress: s.BusAddress, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if m.UnitDir() != s.UnitDir {
		t.Fatalf("unit dir %s, sandbox has %s", m.UnitDir(), s.UnitDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	changed := map[string]int{}
	resynced := make(chan struct{}, 8)
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		m.Run(ctx, func(u string) { mu.Lock(); changed[u]++; mu.Unlock() }, func() { resynced <- struct{}{} })
	}()
	defer func() { cancel(); <-runDone }()
	if err := m.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	<-resynced // a (re)connection asks the caller to look at everything

	const unit = "mgrtest.service"
	if err := os.WriteFile(filepath.Join(m.UnitDir(), unit), []byte("[Unit]\nDescription=test\n[Service]\nExecStart=/bin/sh -c 'echo hello from mgrtest; exec sleep 600'\n[Install]\nWantedBy=multi-user.target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	state := func() systemd.UnitState {
		t.Helper()
		us, err := m.State(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		return us
	}
	if us := state(); us.LoadState != "loaded" || us.ActiveState != "inactive" || us.FragmentPath != "/etc/systemd/system/"+unit {
		t.Fatalf("after reload: %+v", us)
	}
	if err := m.Enable(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if us := state(); us.UnitFileState != "enabled" {
		t.Fatalf("after enable: %s", us.UnitFileState)
	}
	signalled := func() int { mu.Lock(); defer mu.Unlock(); return changed[unit] }
	before := signalled()
	if err := m.Start(ctx, unit); err != nil {
		t.Fatal(err)
	}
	waitfor.Within(t, time.Minute, "the unit active, with a signal", func() bool {
		return state().ActiveState == "active" && signalled() > before
	})
	us := state()
	if us.MainPID == 0 || us.Since.IsZero() || us.JobPending {
		t.Fatalf("active unit: %+v", us)
	}
	pid := us.MainPID
	if err := m.Restart(ctx, unit); err != nil {
		t.Fatal(err)
	}
	waitfor.Within(t, time.Minute, "a new main process", func() bool {
		us := state()
		return us.ActiveState == "active" && us.MainPID != 0 && us.MainPID != pid
	})
	lines, err := m.Journal(ctx, unit, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "hello from mgrtest") }) {
		t.Errorf("journal has no output of the unit: %q", lines)
	}
	if err := m.Stop(ctx, unit); err != nil {
		t.Fatal(err)
	}
	waitfor.Within(t, time.Minute, "the unit inactive", func() bool { return state().ActiveState == "inactive" })
	if err := m.Disable(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if us := state(); us.UnitFileState != "disabled" {
		t.Fatalf("after disable: %s", us.UnitFileState)
	}
	if err := m.Stop(ctx, "never-heard-of.service"); !systemd.IsNoSuchUnit(err) {
		t.Errorf("stopping an unknown unit: %v, want NoSuchUnit", err)
	}
}
