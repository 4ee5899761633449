// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package controllers

import (
	"testing"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/module/systemd"
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
		"stopped as asked": {mod("Stopped", ""), systemd.UnitState{ActiveState: "inactive", SubState: "dead"}, v1alpha1.ModuleInactive, "True", ReasonStoppedByModule},
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
