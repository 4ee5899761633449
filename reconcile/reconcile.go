// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package reconcile is the generic controller engine: one typed,
// rate-limited work queue per kind, a pool of workers per queue, per-item
// exponential backoff on error, RequeueAfter, panic recovery and metrics.
// The queue guarantees that one key is never reconciled by two workers at
// once, and that a key added many times while waiting is reconciled once.
package reconcile

import (
	"context"
	"errors"
	"time"
)

// Request names one object of the controller's kind. It is comparable and
// is the queue key.
type Request struct{ Name string }

// Result tells the engine what to do after a successful reconcile.
type Result struct {
	// RequeueAfter > 0 reconciles the object again after this long.
	RequeueAfter time.Duration
}

// Reconciler moves one object toward its spec.
type Reconciler interface {
	// Reconcile moves the named object toward its spec. A non-nil error
	// requeues with backoff and Result is ignored, unless the error is a
	// TerminalError. It must re-read state on every call (level-based) and
	// return Result{}, nil for an object that no longer exists.
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// Func adapts a function to Reconciler.
type Func func(ctx context.Context, req Request) (Result, error)

// Reconcile implements Reconciler.
func (f Func) Reconcile(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

// TerminalError is an error that retrying will not fix (bad user input):
// it is logged and counted, but the object is not requeued.
type TerminalError struct{ Err error }

// Error returns the wrapped error's text.
func (e *TerminalError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal wraps err as a TerminalError; Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether err is or wraps a TerminalError.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}
