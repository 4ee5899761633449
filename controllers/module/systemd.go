// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"context"

	"github.com/reconciled/reconciled/internal/systemd"
)

// Systemd is what the Module controller needs of one systemd (the system
// manager, or a user's): *systemd.Manager over D-Bus, or a fake in tests.
type Systemd interface {
	// Scope is "system" or "user".
	Scope() string
	// UnitDir is where the controller writes unit files.
	UnitDir() string
	// Address is the bus address, for messages.
	Address() string
	// Connected reports whether the manager answers now.
	Connected() bool
	// Run keeps a connection with a signal subscription until ctx is
	// done: changed gets the units whose properties change, resync is
	// called after every (re)connection.
	Run(ctx context.Context, changed func(unit string), resync func())
	// OtherDefinitions lists the files that define unit elsewhere than
	// UnitDir (vendor units, drop-ins, generators).
	OtherDefinitions(unit string) []string
	Reload(ctx context.Context) error
	Start(ctx context.Context, unit string) error
	Stop(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	ResetFailed(ctx context.Context, unit string) error
	Enable(ctx context.Context, unit string) error
	Disable(ctx context.Context, unit string) error
	State(ctx context.Context, unit string) (systemd.UnitState, error)
	Journal(ctx context.Context, unit string, n int) ([]string, error)
}

var _ Systemd = (*systemd.Manager)(nil)
