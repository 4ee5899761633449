// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"fmt"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
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
	st.seenMu.Lock()
	if phase := st.published.Phase; installing(phase) {
		st.seenMu.Unlock()
		return fmt.Errorf("pinode %q is %s (an install power-cycles it already): %w", name, phase, resources.ErrConflict)
	}
	if st.published.Cycle == nil {
		st.cycleRequest = TriggerAPI
	}
	st.seenMu.Unlock()
	r.enqueue(name)
	return nil
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
