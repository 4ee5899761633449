// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"context"
	"net"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/poe"
)

// SNMPPower is the Power of real switches: PoE ports switched and
// forwarding tables read over SNMP (internal/poe).
type SNMPPower struct{}

var _ Power = SNMPPower{}

// SetPower switches the PoE of the node's port on or off.
func (SNMPPower) SetPower(ctx context.Context, sw v1alpha1.SwitchPort, on bool) error {
	t, err := poe.TargetFor(sw)
	if err != nil {
		return err
	}
	return poe.SetPower(ctx, t, sw.Port, on)
}

// Locate returns the port the switch last saw mac on, or 0.
func (SNMPPower) Locate(ctx context.Context, sw v1alpha1.SwitchPort, mac net.HardwareAddr) (int, error) {
	t, err := poe.TargetFor(sw)
	if err != nil {
		return 0, err
	}
	entries, err := poe.Discover(ctx, t)
	if err != nil {
		return 0, err
	}
	if e, ok := poe.PortOf(entries, mac); ok {
		return e.Port, nil
	}
	return 0, nil
}
