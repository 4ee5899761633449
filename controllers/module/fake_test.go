// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/reconciled/reconciled/internal/systemd"
)

// fakeSystemd is a Systemd in memory: units are in a map, every call is
// logged ("start web.service", "reload"), and a started unit is active at
// once. Its unit dir is a real folder, as the controller writes files.
type fakeSystemd struct {
	mu        sync.Mutex
	dir       string
	down      bool
	reloadErr error
	others    map[string][]string
	units     map[string]*systemd.UnitState
	calls     []string
}

var _ Systemd = (*fakeSystemd)(nil)

func newFakeSystemd(dir string) *fakeSystemd {
	return &fakeSystemd{dir: dir, others: map[string][]string{}, units: map[string]*systemd.UnitState{}}
}

func (f *fakeSystemd) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// takeCalls returns the calls since the last takeCalls.
func (f *fakeSystemd) takeCalls() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.Join(f.calls, ", ")
	f.calls = nil
	return s
}

func (f *fakeSystemd) unit(u string) *systemd.UnitState {
	us := f.units[u]
	if us == nil {
		us = &systemd.UnitState{LoadState: "not-found", ActiveState: "inactive", SubState: "dead", UnitFileState: "disabled"}
		f.units[u] = us
	}
	return us
}

// set changes a unit's state as something outside the controller would.
func (f *fakeSystemd) set(u string, change func(*systemd.UnitState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.unit(u))
}

func (f *fakeSystemd) Scope() string                                          { return "system" }
func (f *fakeSystemd) UnitDir() string                                        { return f.dir }
func (f *fakeSystemd) Address() string                                        { return "unix:path=/fake" }
func (f *fakeSystemd) Connected() bool                                        { f.mu.Lock(); defer f.mu.Unlock(); return !f.down }
func (f *fakeSystemd) Run(ctx context.Context, _ func(string), resync func()) { resync(); <-ctx.Done() }

func (f *fakeSystemd) OtherDefinitions(u string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.others[u]
}

func (f *fakeSystemd) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("reload")
	if f.reloadErr != nil {
		return f.reloadErr
	}
	for name, us := range f.units {
		if _, err := os.Stat(filepath.Join(f.dir, name)); err == nil {
			us.LoadState = "loaded"
		} else {
			us.LoadState = "not-found"
		}
		us.NeedDaemonReload = false
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		f.unit(e.Name()).LoadState = "loaded"
	}
	return nil
}

// call logs verb and fails for a unit systemd has not loaded.
func (f *fakeSystemd) call(verb, u string, change func(*systemd.UnitState)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("%s %s", verb, u)
	us := f.unit(u)
	if us.LoadState != "loaded" {
		return errors.New("Unit " + u + " not found.")
	}
	change(us)
	return nil
}

func (f *fakeSystemd) Start(_ context.Context, u string) error {
	return f.call("start", u, func(us *systemd.UnitState) { us.ActiveState, us.SubState = "active", "running" })
}

func (f *fakeSystemd) Stop(_ context.Context, u string) error {
	return f.call("stop", u, func(us *systemd.UnitState) { us.ActiveState, us.SubState = "inactive", "dead" })
}

func (f *fakeSystemd) Restart(_ context.Context, u string) error {
	return f.call("restart", u, func(us *systemd.UnitState) { us.ActiveState, us.SubState = "active", "running" })
}

func (f *fakeSystemd) ResetFailed(_ context.Context, u string) error {
	return f.call("reset-failed", u, func(us *systemd.UnitState) {
		if us.ActiveState == "failed" {
			us.ActiveState = "inactive"
		}
	})
}

func (f *fakeSystemd) Enable(_ context.Context, u string) error {
	return f.call("enable", u, func(us *systemd.UnitState) { us.UnitFileState = "enabled" })
}

func (f *fakeSystemd) Disable(_ context.Context, u string) error {
	return f.call("disable", u, func(us *systemd.UnitState) { us.UnitFileState = "disabled" })
}

func (f *fakeSystemd) State(_ context.Context, u string) (systemd.UnitState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.unit(u), nil
}

func (f *fakeSystemd) Journal(context.Context, string, int) ([]string, error) {
	return []string{"the last line"}, nil
}
