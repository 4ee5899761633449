// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package waitfor is the bounded wait of the project's tests: poll a
// condition until it holds, or fail the test after a generous timeout.
// Tests never sleep for a fixed time to wait for something.
package waitfor

import (
	"testing"
	"time"
)

// interval is how often conditions are polled.
const interval = 2 * time.Millisecond

// Within polls cond until it holds, failing t after timeout.
func Within(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// Steady checks that cond holds throughout d, failing t as soon as it does
// not. (Showing that something does not happen needs a window; keep d short.)
func Steady(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(interval) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
	}
}
