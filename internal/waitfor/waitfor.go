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

// interval is how often Steady checks, and where Within starts.
const interval = 2 * time.Millisecond

// maxInterval caps Within's backoff: a condition that takes long to come
// true (and may be costly to check: a /proc scan, a systemd query) is not
// polled hundreds of times a second, and is seen at most this late.
const maxInterval = 100 * time.Millisecond

// Within polls cond until it holds, failing t after timeout. It polls
// every 2 ms at first, backing off to every 100 ms.
func Within(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := interval; !cond(); delay = min(2*delay, maxInterval) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay)
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
