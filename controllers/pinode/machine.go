// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/netboot/handshake"
)

// This file is the PiNode state machine: next is a pure function from the
// node's record, what the spec asks, what the netboot servers saw and the
// time, to the next record, at most one switch operation, events and when
// to look again. Reconcile is its only caller, and so the only writer of a
// node's phase.

// input is what next decides from, besides the record.
type input struct {
	// From the spec.
	want           string // installHash of the spec
	gen            int64  // spec.installGeneration
	hasImage       bool
	powerOff       bool // spec.power: Off
	port           int
	restartedAt    string // the reconciled.dev/restartedAt annotation
	installedGen   *int64 // status.installedGeneration as the file has it
	powerOffTime   time.Duration
	bootTimeout    time.Duration
	installTimeout time.Duration

	// Requests through the API.
	reinstall    bool
	cycleRequest string // the trigger of a power cycle asked for, or ""

	// What the netboot servers saw since the last reconcile.
	lastContact time.Time // the last DHCP, TFTP or handshake contact
	planAt      time.Time // when the installer asked for its plan; zero: not since
	reports     []report  // progress reports, in order

	// failed is set when next is called again because the switch
	// operation it asked for failed.
	failed error
}

// report is one progress report of the installer.
type report struct {
	handshake.Progress
	at time.Time
}

// powerOp is a switch operation next asks for: the port on or off.
type powerOp struct {
	on bool
}

// event is an event next asks to record.
type event struct {
	typ, reason, msg string
}

// output is next's decision.
type output struct {
	rec piRecord
	// power, when set, is done before rec is kept; if it fails, next is
	// called again with input.failed and that output is kept instead.
	power *powerOp
	// events are recorded once the output is kept.
	events []event
	// installedGen, when set, is the status' installedGeneration.
	installedGen *int64
	// requeue is when to look again (0: on the next change).
	requeue time.Duration
	// err, when set, retries the reconcile with the engine's backoff.
	err error
	// tookReinstall and tookCycle say that the requests were acted on.
	tookReinstall, tookCycle bool
	// note is logged, when set.
	note string
}

func (o *output) emit(typ, reason, format string, args ...any) {
	o.events = append(o.events, event{typ, reason, fmt.Sprintf(format, args...)})
}

func (o *output) phase(phase, reason, msg string, now time.Time) {
	o.rec.Phase, o.rec.PhaseSince, o.rec.Reason, o.rec.Message = phase, now, reason, msg
}

// switchError keeps the record's phase and says why the switch did not do
// what was asked; the engine retries.
func (o *output) switchError(what string, err error) {
	o.rec.Reason, o.rec.Message = ReasonSwitchError, what+err.Error()
	o.err = err
}

// next is the state machine; see the top of this file.
func next(rec piRecord, in input, now time.Time) output {
	out := output{rec: rec}
	out.applySeen(in, now)
	if in.powerOff {
		out.keptOff(in, now)
		return out
	}
	if out.cycle(in, now) {
		return out
	}
	if out.power != nil {
		// A cycle just ended with the port on: one switch operation per
		// step; the install machine looks at once after it.
		out.requeue = time.Millisecond
		return out
	}
	out.install(in, now)
	return out
}

// applySeen applies what the installer said: its plan request moves a
// booting node to Installing, its reports move an install along. A report
// of the install that timed out still counts: the Pi got there after all
// (a daemon restart, a slow copy).
func (o *output) applySeen(in input, now time.Time) {
	r := &o.rec
	if !in.planAt.IsZero() && r.Phase == v1alpha1.PiNodeBooting && r.InstallHash == in.want && in.hasImage {
		o.phase(v1alpha1.PiNodeInstalling, ReasonInstalling, "the installer asked for its plan", in.planAt)
		r.LastProgress = in.planAt
	}
	for _, p := range in.reports {
		r.LastProgress = p.at
		lateSuccess := r.Phase == v1alpha1.PiNodeFailed && p.Phase == handshake.PhaseInstalled &&
			r.FailedHash == r.InstallHash && (r.Reason == ReasonBootTimeout || r.Reason == ReasonInstallTimeout)
		if r.Phase != v1alpha1.PiNodeBooting && r.Phase != v1alpha1.PiNodeInstalling && !lateSuccess {
			continue
		}
		switch p.Phase {
		case handshake.PhaseInstalling:
			if r.Phase != v1alpha1.PiNodeInstalling {
				o.phase(v1alpha1.PiNodeInstalling, ReasonInstalling, "", p.at)
			}
			r.Reason, r.Message = ReasonInstalling, fmt.Sprintf("%d%% %s", p.Percent, p.Message)
		case handshake.PhaseInstalled:
			r.InstalledHash, r.FailedHash = r.InstallHash, ""
			o.phase(v1alpha1.PiNodeInstalled, ReasonInstalled, p.Message, p.at)
			o.emit(events.TypeNormal, ReasonInstalled, "the installer reported success")
		case handshake.PhaseFailed:
			r.FailedHash = r.InstallHash
			o.phase(v1alpha1.PiNodeFailed, ReasonInstallFailed, "the installer reported: "+p.Message, p.at)
			o.emit(events.TypeWarning, ReasonInstallFailed, "the installer reported: %s", p.Message)
		}
	}
}

// keptOff handles power: Off: the port off, no power cycle now or for a
// restartedAt set meanwhile.
func (o *output) keptOff(in input, now time.Time) {
	r := &o.rec
	o.tookCycle = true
	r.RestartedAt, r.RestartedAtSeen = in.restartedAt, true
	if r.Cycle != nil {
		o.endCycle(v1alpha1.PowerCycleCancelled, "cancelled: the spec says power: Off", now)
	}
	if r.Phase == v1alpha1.PiNodeOff {
		return
	}
	if in.failed != nil {
		o.switchError("", in.failed)
		return
	}
	o.power = &powerOp{on: false}
	o.phase(v1alpha1.PiNodeOff, ReasonPoweredOff, fmt.Sprintf("port %d is off (power: Off)", in.port), now)
	o.emit(events.TypeNormal, ReasonPoweredOff, "port %d off", in.port)
}

// cycle starts a requested power cycle and moves one under way along. It
// reports whether a cycle is under way, and the install must wait.
func (o *output) cycle(in input, now time.Time) bool {
	r := &o.rec
	if !r.RestartedAtSeen {
		// A node seen for the first time (or a lost state dir): the
		// annotation's value is where it stands, not a request.
		r.RestartedAt, r.RestartedAtSeen = in.restartedAt, true
	}
	// A cycle starts from a settled node; a request waits out an install
	// or a power-on.
	if settled := r.Phase == v1alpha1.PiNodeInstalled || r.Phase == v1alpha1.PiNodeFailed; r.Cycle == nil && settled {
		trigger := in.cycleRequest
		o.tookCycle = true
		if in.restartedAt != r.RestartedAt {
			r.RestartedAt = in.restartedAt
			if trigger == "" {
				trigger = fmt.Sprintf("annotation %s=%s", v1alpha1.AnnotationRestartedAt, in.restartedAt)
			}
		}
		if trigger != "" {
			r.Cycle = &cycleRecord{Trigger: trigger, Port: in.port, StartedAt: now}
			r.LastCycle = &v1alpha1.PowerCycle{Trigger: trigger, Port: in.port, StartedAt: metav1.NewTime(now), Result: v1alpha1.PowerCycleInProgress}
			o.note = "power-cycling: " + trigger
			o.emit(events.TypeNormal, ReasonPowerCycling, "port %d off for %s (%s)", in.port, in.powerOffTime, trigger)
		}
	}
	c := r.Cycle
	if c == nil {
		return false
	}
	// Copy on write: the record passed in is the caller's.
	cp := *c
	c, r.Cycle = &cp, &cp
	if lc := r.LastCycle; lc != nil {
		lcp := *lc
		r.LastCycle = &lcp
	}
	if c.OffAt.IsZero() {
		if in.failed != nil {
			if now.Sub(c.StartedAt) > in.bootTimeout {
				// The port was never switched off: give up, the Pi runs on.
				o.endCycle(v1alpha1.PowerCycleFailed, fmt.Sprintf("the switch did not switch port %d off for %s: %v", c.Port, in.bootTimeout, in.failed), now)
				return false
			}
			c.LastError = in.failed.Error()
			o.err = in.failed
			return true
		}
		o.power = &powerOp{on: false}
		c.OffAt, c.LastError = now, ""
		o.requeue = in.powerOffTime
		return true
	}
	if d := c.OffAt.Add(in.powerOffTime).Sub(now); d > 0 {
		o.requeue = d
		return true
	}
	if in.failed != nil {
		c.LastError = "power on: " + in.failed.Error()
		if !c.Failed && now.Sub(c.OffAt) > in.bootTimeout {
			// Said loudly (the status, an event, the alert), and still
			// retried: a Pi must not stay off because the switch was away.
			c.Failed = true
			r.LastCycle.Result = v1alpha1.PowerCycleFailed
			r.LastCycle.Message = fmt.Sprintf("port %d is off and the switch did not switch it on for %s (still retrying): %v", c.Port, in.bootTimeout, in.failed)
			o.emit(events.TypeWarning, ReasonPowerCycleFailed, "%s", r.LastCycle.Message)
		}
		o.err = in.failed
		return true
	}
	// The switch reads the port back: the op succeeding means it is on.
	o.power = &powerOp{on: true}
	off := now.Sub(c.OffAt).Round(100 * time.Millisecond)
	o.endCycle(v1alpha1.PowerCycleSucceeded, fmt.Sprintf("port %d off for %s, on again", c.Port, off), now)
	return false
}

// endCycle records how a power cycle ended, with an event.
func (o *output) endCycle(result, msg string, now time.Time) {
	r := &o.rec
	lc := v1alpha1.PowerCycle{}
	if r.LastCycle != nil {
		lc = *r.LastCycle
	}
	lc.Result, lc.Message = result, msg
	switch result {
	case v1alpha1.PowerCycleSucceeded:
		t := metav1.NewTime(now)
		lc.FinishedAt = &t
		o.emit(events.TypeNormal, ReasonPowerCycled, "%s", msg)
	case v1alpha1.PowerCycleFailed:
		o.emit(events.TypeWarning, ReasonPowerCycleFailed, "%s", msg)
	default:
		o.emit(events.TypeNormal, ReasonPowerCycling, "%s", msg)
	}
	r.LastCycle, r.Cycle = &lc, nil
}

// install is the install machine: power cycle (PoweringOff), netboot
// (Booting), the installer's work (Installing), and Installed or Failed.
func (o *output) install(in input, now time.Time) {
	r := &o.rec
	if r.Phase == v1alpha1.PiNodeOff && r.FailedHash == in.want && !in.reinstall {
		// power: On again after Off, with the failed install not asked
		// for again: power the port and show the failure.
		if in.failed != nil {
			o.switchError("power on: ", in.failed)
			return
		}
		o.power = &powerOp{on: true}
		o.phase(v1alpha1.PiNodeFailed, ReasonInstallFailed, "powered on again; the last install failed: bump installGeneration or reinstall", now)
		return
	}
	inProgress := installing(r.Phase)
	// Has this exact install (generation + image) finished? The record
	// knows; without one (a new node, or a lost state dir) the file's
	// installedGeneration does.
	needInstall := in.gen > 0 && r.InstalledHash != in.want &&
		(r.InstalledHash != "" || in.installedGen == nil || *in.installedGen != in.gen)
	begin := in.reinstall || (inProgress && r.InstallHash != in.want) || (!inProgress && needInstall && r.FailedHash != in.want)
	switch {
	case begin:
		reason := "the spec asks for install " + strconv.FormatInt(in.gen, 10)
		if in.reinstall {
			reason = "reinstall requested"
		}
		o.tookReinstall = true
		r.InstallHash, r.FailedHash = in.want, ""
		o.note = "reinstalling: " + reason
		o.emit(events.TypeNormal, ReasonPoweringOff, "power cycle to install: %s", reason)
		if in.failed != nil {
			o.phase(v1alpha1.PiNodePoweringOff, ReasonSwitchError, in.failed.Error(), now)
			o.err = in.failed
			return
		}
		o.power = &powerOp{on: false}
		o.phase(v1alpha1.PiNodePoweringOff, ReasonPoweringOff, fmt.Sprintf("port %d off for %s", in.port, in.powerOffTime), now)
		o.requeue = in.powerOffTime
	case r.Phase == v1alpha1.PiNodePoweringOff:
		if d := r.PhaseSince.Add(in.powerOffTime).Sub(now); d > 0 && r.Reason != ReasonSwitchError {
			o.requeue = d
			return
		}
		if r.Reason == ReasonSwitchError { // the off did not go through yet
			if in.failed != nil {
				if now.Sub(r.PhaseSince) > in.bootTimeout {
					// A switch that stays unreachable fails the install
					// (with its alert) instead of retrying in silence.
					o.fail(ReasonSwitchError, fmt.Sprintf("the switch did not power-cycle port %d for %s: %v", in.port, in.bootTimeout, in.failed), now)
					return
				}
				r.Message = in.failed.Error()
				o.err = in.failed
				return
			}
			o.power = &powerOp{on: false}
			o.phase(v1alpha1.PiNodePoweringOff, ReasonPoweringOff, fmt.Sprintf("port %d off for %s", in.port, in.powerOffTime), now)
			o.requeue = in.powerOffTime
			return
		}
		if in.failed != nil {
			o.switchError("power on: ", in.failed)
			return
		}
		o.power = &powerOp{on: true}
		o.phase(v1alpha1.PiNodeBooting, ReasonBooting, fmt.Sprintf("port %d on; waiting for the Pi to netboot", in.port), now)
		o.requeue = in.bootTimeout
	case r.Phase == v1alpha1.PiNodeBooting:
		deadline := latest(r.PhaseSince, in.lastContact).Add(in.bootTimeout)
		if now.Before(deadline) {
			o.requeue = deadline.Sub(now)
			return
		}
		o.fail(ReasonBootTimeout, fmt.Sprintf("no netboot contact for %s after power-on", in.bootTimeout), now)
	case r.Phase == v1alpha1.PiNodeInstalling:
		deadline := latest(r.PhaseSince, r.LastProgress).Add(in.installTimeout)
		if now.Before(deadline) {
			o.requeue = deadline.Sub(now)
			return
		}
		o.fail(ReasonInstallTimeout, fmt.Sprintf("no progress report for %s", in.installTimeout), now)
	case r.Phase == v1alpha1.PiNodeFailed && r.FailedHash == in.want:
		// Until the spec changes or a reinstall is asked for.
	case !needInstall:
		// Installed (by us, before, or declared with generation 0).
		if r.Phase != v1alpha1.PiNodeInstalled || r.InstalledHash != in.want {
			if r.Phase == v1alpha1.PiNodeOff || r.Phase == "" {
				if in.failed != nil {
					o.switchError("power on: ", in.failed)
					return
				}
				o.power = &powerOp{on: true}
			}
			r.InstallHash, r.InstalledHash = in.want, in.want
			o.phase(v1alpha1.PiNodeInstalled, ReasonInstalled, fmt.Sprintf("generation %d installed", in.gen), now)
		}
		gen := in.gen
		o.installedGen = &gen
	}
}

// fail ends an install with a reason (and the PiNodeInstallFailed alert,
// through the status).
func (o *output) fail(reason, msg string, now time.Time) {
	o.rec.FailedHash = o.rec.InstallHash
	o.phase(v1alpha1.PiNodeFailed, reason, msg, now)
	o.emit(events.TypeWarning, reason, "%s", msg)
}

// installing reports whether phase is a step of an install.
func installing(phase string) bool {
	return phase == v1alpha1.PiNodePoweringOff || phase == v1alpha1.PiNodeBooting || phase == v1alpha1.PiNodeInstalling
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
