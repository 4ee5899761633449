// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/systemd"
)

func TestModuleStatus(t *testing.T) {
	mod := func(state, typ string) *v1alpha1.Module {
		m := &v1alpha1.Module{ObjectMeta: v1alpha1.ObjectMeta{Name: "m", Generation: 3}, Spec: v1alpha1.ModuleSpec{Exec: []string{"/bin/true"}, State: state, Type: typ}}
		m.Default()
		return m
	}
	since := time.Unix(1_800_000_000, 0)
	for name, tc := range map[string]struct {
		mod        *v1alpha1.Module
		us         systemd.UnitState
		phase      string
		ready      string
		readyCause string
	}{
		"running":          {mod("Running", ""), systemd.UnitState{ActiveState: "active", SubState: "running", MainPID: 42}, v1alpha1.ModuleActive, "True", ReasonActive},
		"reloading":        {mod("Running", ""), systemd.UnitState{ActiveState: "reloading"}, v1alpha1.ModuleActive, "False", ReasonPending},
		"starting":         {mod("Running", ""), systemd.UnitState{ActiveState: "activating", SubState: "start"}, v1alpha1.ModuleActivating, "False", ReasonPending},
		"failed":           {mod("Running", ""), systemd.UnitState{ActiveState: "failed", Result: "exit-code"}, v1alpha1.ModuleFailed, "False", ReasonUnitFailed},
		"stopped as asked": {mod("Stopped", ""), systemd.UnitState{ActiveState: "inactive", SubState: "dead"}, v1alpha1.ModuleInactive, "True", ReasonStopped},
		"stopping":         {mod("Stopped", ""), systemd.UnitState{ActiveState: "deactivating"}, v1alpha1.ModuleDeactivating, "False", ReasonPending},
		"oneshot done":     {mod("Running", "oneshot"), systemd.UnitState{ActiveState: "inactive", Result: "success"}, v1alpha1.ModuleInactive, "True", ReasonActive},
		"not running":      {mod("Running", ""), systemd.UnitState{ActiveState: "inactive", Result: "success", Since: since}, v1alpha1.ModuleInactive, "False", ReasonPending},
	} {
		t.Run(name, func(t *testing.T) {
			st := moduleStatus(tc.mod, tc.us)
			if st.Phase != tc.phase || st.ObservedGeneration != 3 || st.MainPID != tc.us.MainPID {
				t.Errorf("phase %q gen %d pid %d, want %q 3 %d", st.Phase, st.ObservedGeneration, st.MainPID, tc.phase, tc.us.MainPID)
			}
			c := st.Condition(v1alpha1.ConditionReady)
			if c == nil || string(c.Status) != tc.ready || c.Reason != tc.readyCause {
				t.Errorf("Ready = %+v, want %s/%s", c, tc.ready, tc.readyCause)
			}
			if !tc.us.Since.IsZero() && (st.Since == nil || !st.Since.Time.Equal(since)) {
				t.Errorf("since = %v, want %v", st.Since, since)
			}
		})
	}
}

// TestModuleCrashLoop: systemd restarting a unit again and again (Restart=
// with a program that fails at start) is a crash loop after
// crashLoopRestarts restarts without crashLoopSettle of activity, even
// though the unit is "active" for a moment in each cycle; staying active
// for crashLoopSettle ends it (issue 11: Ready flipped True every cycle).
func TestModuleCrashLoop(t *testing.T) {
	m := &moduleState{nRestarts: -1}
	now := time.Unix(1_800_000_000, 0)
	look := func(active string, n int64) bool {
		entered, _ := m.observeRestarts(systemd.UnitState{ActiveState: active, NRestarts: n}, now)
		if entered {
			m.crashLoop = "looping"
		}
		return entered
	}
	if look("active", 7) {
		t.Fatal("a first look at a unit with past restarts entered a crash loop")
	}
	for i, st := range []string{"activating", "active", "activating"} {
		now = now.Add(5 * time.Second)
		if entered := look(st, int64(8+i)); entered != (i == 2) {
			t.Fatalf("restart %d (%s): entered %v", i+1, st, entered)
		}
	}
	if look("activating", 11) {
		t.Error("entered twice")
	}
	// Active, but not for long enough: still looping; then settled.
	now = now.Add(time.Second)
	_, recheck := m.observeRestarts(systemd.UnitState{ActiveState: "active", NRestarts: 11}, now)
	if m.crashLoop == "" || recheck != crashLoopSettle {
		t.Fatalf("crashLoop %q, recheck %v after a second of activity", m.crashLoop, recheck)
	}
	now = now.Add(crashLoopSettle)
	m.observeRestarts(systemd.UnitState{ActiveState: "active", NRestarts: 11}, now)
	if m.crashLoop != "" || m.loopRestarts != 0 {
		t.Errorf("still looping after %v active: %q, %d", crashLoopSettle, m.crashLoop, m.loopRestarts)
	}
	// A counter flushed by a manual start is not a restart.
	if look("active", 0) || m.loopRestarts != 0 {
		t.Errorf("a flushed NRestarts counted: %d", m.loopRestarts)
	}
}

// The outcome of a restart a caller waits for is the unit's first state
// without a job after the restart was queued.
func TestModuleRestartOutcome(t *testing.T) {
	for name, tc := range map[string]struct {
		us      systemd.UnitState
		oneshot bool
		want    string // "" ok, "wait", or a part of the error
	}{
		"job pending":     {us: systemd.UnitState{ActiveState: "active", JobPending: true}, want: "wait"},
		"activating":      {us: systemd.UnitState{ActiveState: "activating"}, want: "wait"},
		"active":          {us: systemd.UnitState{ActiveState: "active"}, want: "wait"},
		"failed":          {us: systemd.UnitState{ActiveState: "failed", Result: "exit-code"}, want: "web.service is failed after the restart (result exit-code)"},
		"oneshot done":    {us: systemd.UnitState{ActiveState: "inactive", Result: "success"}, oneshot: true},
		"inactive simple": {us: systemd.UnitState{ActiveState: "inactive", Result: "success"}, want: "inactive after the restart"},
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			m := &moduleState{waiters: []chan error{done}, restartQueued: true}
			m.observeRestart("web.service", tc.us, tc.oneshot, time.Now())
			select {
			case err := <-done:
				switch {
				case tc.want == "wait":
					t.Fatalf("settled (%v) while %+v", err, tc.us)
				case tc.want == "" && err != nil:
					t.Fatalf("error %v, want success", err)
				case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				if m.restartQueued || len(m.waiters) != 0 {
					t.Fatal("waiters kept after the outcome")
				}
			default:
				if tc.want != "wait" {
					t.Fatalf("no outcome for %+v", tc.us)
				}
			}
		})
	}
	// Nothing queued: nothing settles (a waiter whose restart is not
	// queued yet).
	done := make(chan error, 1)
	m := &moduleState{waiters: []chan error{done}}
	m.observeRestart("web.service", systemd.UnitState{ActiveState: "active"}, false, time.Now())
	if len(done) != 0 {
		t.Fatal("settled before the restart was queued")
	}
	// Active counts once it stayed so for restartSettle, without systemd
	// restarting it meanwhile.
	m.restartQueued = true
	t0 := time.Now()
	active := systemd.UnitState{ActiveState: "active", NRestarts: 1}
	if d := m.observeRestart("web.service", active, false, t0); d != restartSettle || len(done) != 0 {
		t.Fatalf("first look at active: recheck %s, settled %d", d, len(done))
	}
	active.NRestarts = 2 // systemd restarted it meanwhile: the wait starts again
	if d := m.observeRestart("web.service", active, false, t0.Add(restartSettle)); d != restartSettle || len(done) != 0 {
		t.Fatalf("after a systemd restart: recheck %s, settled %d", d, len(done))
	}
	if d := m.observeRestart("web.service", active, false, t0.Add(2*restartSettle)); d != 0 || len(done) != 1 || <-done != nil {
		t.Fatalf("after the settle: recheck %s", d)
	}
}

// The status starts from the current conditions: a Ready condition set
// again with the same status keeps its lastTransitionTime, so a reconcile
// in a later second with nothing new writes nothing (issue 14: Module built
// its conditions from empty, and every reconcile in a new second rewrote
// the status).
func TestModuleStatusKeepsTransitionTime(t *testing.T) {
	mod := &v1alpha1.Module{ObjectMeta: v1alpha1.ObjectMeta{Name: "m", Generation: 1}, Spec: v1alpha1.ModuleSpec{Exec: []string{"/bin/true"}}}
	mod.Default()
	us := systemd.UnitState{ActiveState: "active", SubState: "running", MainPID: 42}
	first := moduleStatus(mod, us)
	then := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	first.Conditions[0].LastTransitionTime = then // set an hour ago
	mod.Status = first
	again := moduleStatus(mod, us)
	if got := again.Condition(v1alpha1.ConditionReady).LastTransitionTime; !got.Equal(&then) {
		t.Fatalf("lastTransitionTime moved from %v to %v with nothing changed", then, got)
	}
	if !equality.Semantic.DeepEqual(first, again) {
		t.Fatalf("the status changed with nothing new:\n%+v\n%+v", first, again)
	}
	// A real transition moves it.
	us.ActiveState = "failed"
	failed := moduleStatus(mod, us)
	if got := failed.Condition(v1alpha1.ConditionReady).LastTransitionTime; got.Equal(&then) {
		t.Fatal("lastTransitionTime kept across a transition")
	}
}
