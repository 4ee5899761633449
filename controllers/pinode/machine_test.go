// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/netboot/handshake"
)

// TestNext walks the state machine through its transitions, one table row
// per step: the record and what the spec asks and the servers saw go in;
// the next record, the switch operation, the events and the requeue come
// out. A row with failed set is the second call, after the switch
// operation failed.
func TestNext(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	const want = "h2"
	base := func(mod func(*input)) input {
		in := input{want: want, gen: 2, hasImage: true, port: 7, powerOffTime: 5 * time.Second,
			bootTimeout: 5 * time.Minute, installTimeout: 30 * time.Minute}
		if mod != nil {
			mod(&in)
		}
		return in
	}
	on, off := "on", "off"
	switchDown := errors.New("switch 10.0.0.2:161: no answer")
	installed := piRecord{Phase: v1alpha1.PiNodeInstalled, PhaseSince: t0.Add(-time.Hour), InstallHash: want, InstalledHash: want, RestartedAtSeen: true}
	for _, tc := range []struct {
		name       string
		rec        piRecord
		in         input
		now        time.Time
		phase      string
		reason     string
		power      string // "", "on", "off"
		events     []string
		err        bool
		requeue    time.Duration
		check      func(t *testing.T, o output)
		noneOnFail bool
	}{
		{name: "a new node is installed: the port goes off", rec: piRecord{}, in: base(nil), now: t0,
			phase: v1alpha1.PiNodePoweringOff, reason: ReasonPoweringOff, power: off, events: []string{ReasonPoweringOff}, requeue: 5 * time.Second,
			check: func(t *testing.T, o output) {
				if o.rec.InstallHash != want || !o.tookReinstall || !strings.Contains(o.note, "install 2") {
					t.Errorf("%+v", o)
				}
			}},
		{name: "the switch does not answer the first off", rec: piRecord{}, in: base(func(in *input) { in.failed = switchDown }), now: t0,
			phase: v1alpha1.PiNodePoweringOff, reason: ReasonSwitchError, events: []string{ReasonPoweringOff}, err: true},
		{name: "off, waiting out powerOffTime", rec: piRecord{Phase: v1alpha1.PiNodePoweringOff, PhaseSince: t0, Reason: ReasonPoweringOff, InstallHash: want},
			in: base(nil), now: t0.Add(2 * time.Second), phase: v1alpha1.PiNodePoweringOff, reason: ReasonPoweringOff, requeue: 3 * time.Second},
		{name: "powerOffTime over: on, Booting", rec: piRecord{Phase: v1alpha1.PiNodePoweringOff, PhaseSince: t0, Reason: ReasonPoweringOff, InstallHash: want},
			in: base(nil), now: t0.Add(5 * time.Second), phase: v1alpha1.PiNodeBooting, reason: ReasonBooting, power: on, requeue: 5 * time.Minute},
		{name: "the on fails: still PoweringOff, SwitchError", rec: piRecord{Phase: v1alpha1.PiNodePoweringOff, PhaseSince: t0, Reason: ReasonPoweringOff, InstallHash: want},
			in: base(func(in *input) { in.failed = switchDown }), now: t0.Add(5 * time.Second), phase: v1alpha1.PiNodePoweringOff, reason: ReasonSwitchError, err: true},
		{name: "a silent switch past bootTimeout fails the install", rec: piRecord{Phase: v1alpha1.PiNodePoweringOff, PhaseSince: t0, Reason: ReasonSwitchError, InstallHash: want},
			in: base(func(in *input) { in.failed = switchDown }), now: t0.Add(6 * time.Minute), phase: v1alpha1.PiNodeFailed, reason: ReasonSwitchError,
			events: []string{ReasonSwitchError}, check: func(t *testing.T, o output) {
				if o.rec.FailedHash != want {
					t.Errorf("FailedHash %q", o.rec.FailedHash)
				}
			}},
		{name: "the installer asks for its plan: Installing", rec: piRecord{Phase: v1alpha1.PiNodeBooting, PhaseSince: t0, InstallHash: want},
			in: base(func(in *input) { in.planAt = t0.Add(time.Minute) }), now: t0.Add(time.Minute), phase: v1alpha1.PiNodeInstalling, reason: ReasonInstalling,
			requeue: 30 * time.Minute},
		{name: "no contact for bootTimeout", rec: piRecord{Phase: v1alpha1.PiNodeBooting, PhaseSince: t0, InstallHash: want},
			in: base(func(in *input) { in.lastContact = t0.Add(time.Minute) }), now: t0.Add(7 * time.Minute),
			phase: v1alpha1.PiNodeFailed, reason: ReasonBootTimeout, events: []string{ReasonBootTimeout}},
		{name: "a contact moves the boot deadline", rec: piRecord{Phase: v1alpha1.PiNodeBooting, PhaseSince: t0, InstallHash: want},
			in: base(func(in *input) { in.lastContact = t0.Add(4 * time.Minute) }), now: t0.Add(7 * time.Minute),
			phase: v1alpha1.PiNodeBooting, requeue: 2 * time.Minute},
		{name: "reports: progress, then success", rec: piRecord{Phase: v1alpha1.PiNodeInstalling, PhaseSince: t0, InstallHash: want},
			in: base(func(in *input) {
				in.reports = []report{{handshake.Progress{Phase: handshake.PhaseInstalling, Percent: 40}, t0.Add(time.Minute)},
					{handshake.Progress{Phase: handshake.PhaseInstalled, Percent: 100, Message: "done"}, t0.Add(2 * time.Minute)}}
			}), now: t0.Add(2 * time.Minute), phase: v1alpha1.PiNodeInstalled, reason: ReasonInstalled, events: []string{ReasonInstalled},
			check: func(t *testing.T, o output) {
				if o.rec.InstalledHash != want || o.installedGen == nil || *o.installedGen != 2 {
					t.Errorf("%+v", o)
				}
			}},
		{name: "the installer reports failure", rec: piRecord{Phase: v1alpha1.PiNodeInstalling, PhaseSince: t0, InstallHash: want},
			in: base(func(in *input) {
				in.reports = []report{{handshake.Progress{Phase: handshake.PhaseFailed, Message: "disk full"}, t0.Add(time.Minute)}}
			}), now: t0.Add(time.Minute), phase: v1alpha1.PiNodeFailed, reason: ReasonInstallFailed, events: []string{ReasonInstallFailed}},
		{name: "a success after the boot timeout still counts", rec: piRecord{Phase: v1alpha1.PiNodeFailed, Reason: ReasonBootTimeout, InstallHash: want, FailedHash: want},
			in: base(func(in *input) {
				in.reports = []report{{handshake.Progress{Phase: handshake.PhaseInstalled}, t0}}
			}), now: t0, phase: v1alpha1.PiNodeInstalled, reason: ReasonInstalled, events: []string{ReasonInstalled}},
		{name: "a failed install is not retried by itself", rec: piRecord{Phase: v1alpha1.PiNodeFailed, Reason: ReasonBootTimeout, InstallHash: want, FailedHash: want},
			in: base(nil), now: t0, phase: v1alpha1.PiNodeFailed, reason: ReasonBootTimeout},
		{name: "reinstall asked for", rec: installed, in: base(func(in *input) { in.reinstall = true }), now: t0,
			phase: v1alpha1.PiNodePoweringOff, reason: ReasonPoweringOff, power: off, events: []string{ReasonPoweringOff}, requeue: 5 * time.Second},
		{name: "installed: nothing to do", rec: installed, in: base(nil), now: t0, phase: v1alpha1.PiNodeInstalled, reason: "",
			check: func(t *testing.T, o output) {
				if o.installedGen == nil || *o.installedGen != 2 {
					t.Errorf("installedGen %v", o.installedGen)
				}
			}},
		{name: "generation 0 declares an installed Pi: the port goes on", rec: piRecord{}, in: base(func(in *input) { in.gen = 0 }), now: t0,
			phase: v1alpha1.PiNodeInstalled, reason: ReasonInstalled, power: on},
		{name: "installed as the file says (a lost state dir)", rec: piRecord{Phase: v1alpha1.PiNodeInstalled}, in: base(func(in *input) { g := int64(2); in.installedGen = &g }),
			now: t0, phase: v1alpha1.PiNodeInstalled, reason: ReasonInstalled},
		{name: "power: Off", rec: installed, in: base(func(in *input) { in.powerOff = true }), now: t0,
			phase: v1alpha1.PiNodeOff, reason: ReasonPoweredOff, power: off, events: []string{ReasonPoweredOff}},
		{name: "power: Off, the switch fails", rec: installed, in: base(func(in *input) { in.powerOff = true; in.failed = switchDown }), now: t0,
			phase: v1alpha1.PiNodeInstalled, reason: ReasonSwitchError, err: true},
		{name: "On again after a failed install: on, still Failed", rec: piRecord{Phase: v1alpha1.PiNodeOff, InstallHash: want, FailedHash: want},
			in: base(nil), now: t0, phase: v1alpha1.PiNodeFailed, reason: ReasonInstallFailed, power: on},
		{name: "restart asked for: the cycle begins", rec: installed, in: base(func(in *input) { in.cycleRequest = TriggerAPI }), now: t0,
			phase: v1alpha1.PiNodeInstalled, power: off, events: []string{ReasonPowerCycling}, requeue: 5 * time.Second,
			check: func(t *testing.T, o output) {
				if o.rec.Cycle == nil || !o.rec.Cycle.OffAt.Equal(t0) || o.rec.LastCycle.Result != v1alpha1.PowerCycleInProgress || !o.tookCycle {
					t.Errorf("%+v", o.rec)
				}
			}},
		{name: "a new annotation value is a restart", rec: installed, in: base(func(in *input) { in.restartedAt = "2026-12-05" }), now: t0,
			phase: v1alpha1.PiNodeInstalled, power: off, events: []string{ReasonPowerCycling}, requeue: 5 * time.Second,
			check: func(t *testing.T, o output) {
				if o.rec.Cycle.Trigger != "annotation reconciled.dev/restartedAt=2026-12-05" || o.rec.RestartedAt != "2026-12-05" {
					t.Errorf("%+v", o.rec.Cycle)
				}
			}},
		{name: "the first annotation value seen is no restart", rec: piRecord{Phase: v1alpha1.PiNodeInstalled, InstallHash: want, InstalledHash: want},
			in: base(func(in *input) { in.restartedAt = "x" }), now: t0, phase: v1alpha1.PiNodeInstalled},
		{name: "a restart waits out an install", rec: piRecord{Phase: v1alpha1.PiNodeBooting, PhaseSince: t0, InstallHash: want, RestartedAtSeen: true},
			in: base(func(in *input) { in.cycleRequest = TriggerAPI }), now: t0, phase: v1alpha1.PiNodeBooting, requeue: 5 * time.Minute,
			check: func(t *testing.T, o output) {
				if o.tookCycle || o.rec.Cycle != nil {
					t.Error("the request was taken during an install")
				}
			}},
		{name: "the cycle's off time is over: on, Succeeded", rec: withCycle(installed, t0), in: base(nil), now: t0.Add(5 * time.Second),
			phase: v1alpha1.PiNodeInstalled, power: on, events: []string{ReasonPowerCycled}, requeue: time.Millisecond,
			check: func(t *testing.T, o output) {
				if o.rec.Cycle != nil || o.rec.LastCycle.Result != v1alpha1.PowerCycleSucceeded || o.rec.LastCycle.FinishedAt == nil {
					t.Errorf("%+v", o.rec.LastCycle)
				}
			}},
		{name: "the cycle's on fails past bootTimeout: Failed, still retried", rec: withCycle(installed, t0), in: base(func(in *input) { in.failed = switchDown }),
			now: t0.Add(10 * time.Minute), phase: v1alpha1.PiNodeInstalled, events: []string{ReasonPowerCycleFailed}, err: true,
			check: func(t *testing.T, o output) {
				if o.rec.Cycle == nil || !o.rec.Cycle.Failed || o.rec.LastCycle.Result != v1alpha1.PowerCycleFailed {
					t.Errorf("%+v %+v", o.rec.Cycle, o.rec.LastCycle)
				}
				if cycleReason, _ := cycleCondition(o.rec.Cycle, 5*time.Second); cycleReason != ReasonSwitchError {
					t.Errorf("Ready reason %s", cycleReason)
				}
			}},
		{name: "power: Off cancels a cycle", rec: withCycle(installed, t0), in: base(func(in *input) { in.powerOff = true }), now: t0,
			phase: v1alpha1.PiNodeOff, power: off, events: []string{ReasonPowerCycling, ReasonPoweredOff},
			check: func(t *testing.T, o output) {
				if o.rec.Cycle != nil || o.rec.LastCycle.Result != v1alpha1.PowerCycleCancelled {
					t.Errorf("%+v", o.rec.LastCycle)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.rec
			o := next(tc.rec, tc.in, tc.now)
			if tc.rec != before {
				t.Fatal("next changed the record it was given")
			}
			if o.rec.Phase != tc.phase {
				t.Errorf("phase %q, want %q", o.rec.Phase, tc.phase)
			}
			if tc.reason != "" && o.rec.Reason != tc.reason {
				t.Errorf("reason %q, want %q (%s)", o.rec.Reason, tc.reason, o.rec.Message)
			}
			power := ""
			if o.power != nil {
				power = map[bool]string{true: on, false: off}[o.power.on]
			}
			if power != tc.power {
				t.Errorf("power %q, want %q", power, tc.power)
			}
			var evs []string
			for _, e := range o.events {
				evs = append(evs, e.reason)
			}
			if !slices.Equal(evs, tc.events) {
				t.Errorf("events %v, want %v", evs, tc.events)
			}
			if (o.err != nil) != tc.err {
				t.Errorf("err %v, want error %v", o.err, tc.err)
			}
			if o.requeue != tc.requeue {
				t.Errorf("requeue %s, want %s", o.requeue, tc.requeue)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

// withCycle is rec with a power cycle whose off went through at t.
func withCycle(rec piRecord, t time.Time) piRecord {
	rec.Cycle = &cycleRecord{Trigger: TriggerAPI, Port: 7, StartedAt: t, OffAt: t}
	rec.LastCycle = &v1alpha1.PowerCycle{Trigger: TriggerAPI, Port: 7, Result: v1alpha1.PowerCycleInProgress}
	return rec
}
