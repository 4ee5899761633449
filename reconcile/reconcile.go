// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package reconcile is the generic controller engine: one typed,
// rate-limited work queue per controller, a pool of workers per queue,
// per-item exponential backoff on error, RequeueAfter, panic recovery and
// metrics. The queue guarantees that one key is never reconciled by two
// workers at once, and that a key added many times while waiting is
// reconciled once.
//
// A controller's key is any comparable type (TypedReconciler[K], as
// client-go's typed work queue): the kinds' controllers use Request (a
// name), the alert source a kind and a name.
package reconcile

import (
	"context"
	"errors"
	"time"
)

// Request names one object of the controller's kind. It is comparable and
// is the queue key.
type Request struct{ Name string }

// String returns the name, for logs.
func (r Request) String() string { return r.Name }

// Result tells the engine what to do after a successful reconcile.
type Result struct {
	// RequeueAfter > 0 reconciles the object again after this long.
	RequeueAfter time.Duration
}

// TypedReconciler moves the object a key of type K names toward its spec.
type TypedReconciler[K comparable] interface {
	// Reconcile moves the object toward its spec. A non-nil error
	// requeues with backoff and Result is ignored, unless the error is a
	// TerminalError. It must re-read state on every call (level-based) and
	// return Result{}, nil for an object that no longer exists.
	Reconcile(ctx context.Context, key K) (Result, error)
}

// Reconciler is the reconciler of one kind, keyed by name.
type Reconciler = TypedReconciler[Request]

// TypedFunc adapts a function to TypedReconciler.
type TypedFunc[K comparable] func(ctx context.Context, key K) (Result, error)

// Reconcile implements TypedReconciler.
func (f TypedFunc[K]) Reconcile(ctx context.Context, key K) (Result, error) { return f(ctx, key) }

// Func adapts a function to Reconciler.
type Func = TypedFunc[Request]

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
