// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/resources"
)

// Reasons of a power cycle (piman's "restart"): a Pi switched off and on
// over SNMP, without an install.
const (
	ReasonPowerCycling = "PowerCycling"
	ReasonPowerCycled  = "PowerCycled"
	// ReasonPowerCycleFailed is the event of a cycle the switch did not
	// carry out within bootTimeout.
	ReasonPowerCycleFailed = "PowerCycleFailed"
)

// TriggerAPI is the PowerCycle.Trigger of a cycle asked through the API
// (reconcilectl restart pinode/NAME).
const TriggerAPI = "reconcilectl restart"

// cycleRecord is a power cycle in progress, kept in the PiNode's record so
// that a daemon restarted while the port is off switches it on again.
type cycleRecord struct {
	Trigger   string    `json:"trigger"`
	Port      int       `json:"port"`
	StartedAt time.Time `json:"startedAt"`
	// OffAt is when the switch read the port off; zero until then.
	OffAt time.Time `json:"offAt,omitempty"`
	// LastError is the switch's last error, if any.
	LastError string `json:"lastError,omitempty"`
	// Failed is set once the cycle was reported Failed (it is still
	// retried while the port may be off).
	Failed bool `json:"failed,omitempty"`
}

// RequestPowerCycle power-cycles a PiNode (off, powerOffTime, on) without
// reinstalling it. It refuses a node that is kept off (power: Off) or in
// the middle of an install, whose cycle would be lost in the install's
// own; a cycle already under way is not started twice.
func (r *Reconciler) RequestPowerCycle(name string) error {
	obj, ok := r.store.Get(v1alpha1.KindPiNode, name)
	if !ok {
		return fmt.Errorf("pinode %q: %w", name, resources.ErrNotFound)
	}
	if obj.(*v1alpha1.PiNode).Spec.Power == "Off" {
		return fmt.Errorf("pinode %q has power: Off; set it On to power it: %w", name, resources.ErrConflict)
	}
	st := r.state(name)
	st.mu.Lock()
	if installing(st.rec.Phase) {
		phase := st.rec.Phase
		st.mu.Unlock()
		return fmt.Errorf("pinode %q is %s (an install power-cycles it already): %w", name, phase, resources.ErrConflict)
	}
	if st.rec.Cycle == nil {
		st.cycleRequest = TriggerAPI
	}
	st.mu.Unlock()
	r.enqueue(name)
	return nil
}

// installing reports whether phase is a step of an install.
func installing(phase string) bool {
	return phase == v1alpha1.PiNodePoweringOff || phase == v1alpha1.PiNodeBooting || phase == v1alpha1.PiNodeInstalling
}

// cycleLocked starts a requested power cycle and moves one under way
// along. busy means a cycle is under way, and the install state machine
// must wait; wait is when to look again.
func (r *Reconciler) cycleLocked(ctx context.Context, log logr.Logger, n *v1alpha1.PiNode, st *piState) (wait time.Duration, busy bool, err error) {
	nb := r.opts.Netboot
	name, port := n.Name, n.Spec.Switch.Port
	now := time.Now()
	ann := n.Annotations[v1alpha1.AnnotationRestartedAt]
	if !st.rec.RestartedAtSeen {
		// A node seen for the first time (or a lost state dir): the
		// annotation's value is where it stands, not a request.
		st.rec.RestartedAt, st.rec.RestartedAtSeen = ann, true
		r.records.Put(name, st.rec)
	}
	// A cycle starts from a settled node; a request waits out an install
	// or a power-on.
	if settled := st.rec.Phase == v1alpha1.PiNodeInstalled || st.rec.Phase == v1alpha1.PiNodeFailed; st.rec.Cycle == nil && settled {
		trigger := st.cycleRequest
		st.cycleRequest = ""
		if ann != st.rec.RestartedAt {
			st.rec.RestartedAt = ann
			if trigger == "" {
				trigger = fmt.Sprintf("annotation %s=%s", v1alpha1.AnnotationRestartedAt, ann)
			}
		}
		if trigger != "" {
			st.rec.Cycle = &cycleRecord{Trigger: trigger, Port: port, StartedAt: now}
			st.rec.LastCycle = &v1alpha1.PowerCycle{Trigger: trigger, Port: port, StartedAt: metav1.NewTime(now), Result: v1alpha1.PowerCycleInProgress}
			r.records.Put(name, st.rec)
			log.Info("power-cycling", "trigger", trigger, "port", port)
			r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeNormal, ReasonPowerCycling, "port %d off for %s (%s)", port, nb.PowerOffTime, trigger)
		}
	}
	c := st.rec.Cycle
	if c == nil {
		return 0, false, nil
	}
	if c.OffAt.IsZero() {
		if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, false); err != nil {
			if now.Sub(c.StartedAt) > nb.BootTimeout {
				// The port was never switched off: give up, the Pi runs on.
				r.endCycleLocked(name, st, v1alpha1.PowerCycleFailed, fmt.Sprintf("the switch did not switch port %d off for %s: %v", c.Port, nb.BootTimeout, err))
				return 0, false, nil
			}
			c.LastError = err.Error()
			r.records.Put(name, st.rec)
			return 0, true, err
		}
		c.OffAt, c.LastError = time.Now(), ""
		r.records.Put(name, st.rec)
		return nb.PowerOffTime, true, nil
	}
	if d := c.OffAt.Add(nb.PowerOffTime).Sub(now); d > 0 {
		return d, true, nil
	}
	// SetPower reads the port back: nil means the switch reads it on.
	if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, true); err != nil {
		c.LastError = "power on: " + err.Error()
		if !c.Failed && now.Sub(c.OffAt) > nb.BootTimeout {
			// Said loudly (the status, an event, the alert), and still
			// retried: a Pi must not stay off because the switch was away.
			c.Failed = true
			st.rec.LastCycle.Result = v1alpha1.PowerCycleFailed
			st.rec.LastCycle.Message = fmt.Sprintf("port %d is off and the switch did not switch it on for %s (still retrying): %v", c.Port, nb.BootTimeout, err)
			r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeWarning, ReasonPowerCycleFailed, "%s", st.rec.LastCycle.Message)
		}
		r.records.Put(name, st.rec)
		return 0, true, err
	}
	off := time.Since(c.OffAt).Round(100 * time.Millisecond)
	r.endCycleLocked(name, st, v1alpha1.PowerCycleSucceeded, fmt.Sprintf("port %d off for %s, on again", c.Port, off))
	return 0, false, nil
}

// endCycleLocked records how a power cycle ended, with an event.
func (r *Reconciler) endCycleLocked(name string, st *piState, result, msg string) {
	now := metav1.NewTime(time.Now())
	lc := st.rec.LastCycle
	lc.Result, lc.Message = result, msg
	switch result {
	case v1alpha1.PowerCycleSucceeded:
		lc.FinishedAt = &now
		r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeNormal, ReasonPowerCycled, "%s", msg)
	case v1alpha1.PowerCycleFailed:
		r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeWarning, ReasonPowerCycleFailed, "%s", msg)
	default:
		r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeNormal, ReasonPowerCycling, "%s", msg)
	}
	st.rec.Cycle = nil
	r.records.Put(name, st.rec)
}

// cycleCondition is the Ready condition while a power cycle is under way.
func cycleCondition(c *cycleRecord, powerOffTime time.Duration) (reason, msg string) {
	switch {
	case c.LastError != "":
		return ReasonSwitchError, fmt.Sprintf("power cycle (%s): %s", c.Trigger, c.LastError)
	case c.OffAt.IsZero():
		return ReasonPowerCycling, fmt.Sprintf("switching port %d off (%s)", c.Port, c.Trigger)
	}
	return ReasonPowerCycling, fmt.Sprintf("port %d off for %s (%s)", c.Port, powerOffTime, c.Trigger)
}
