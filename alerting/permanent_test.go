// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"testing"
	"time"
)

// A notification the receiver rejects for good is dropped after one
// attempt: it neither retries forever nor blocks what follows.
func TestPermanentRejectionIsDropped(t *testing.T) {
	fs := newFakes()
	m, stop := start(t, testOptions(fs, ""))
	defer stop()
	rcv := fs.get("a")
	rcv.mu.Lock()
	rcv.rejectN = 1
	rcv.mu.Unlock()
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	a := newAlert("Link", "a2rtr", "LinkDown")
	m.Set(a)
	eventually(t, "rejected once and dropped", func() bool {
		s := mustStatus(t, m, "r")
		return s.Failed == 1 && s.Pending == 0
	})
	m.Set(resolve(a))
	eventually(t, "the resolution still goes out", func() bool {
		ns := rcv.notifications()
		return len(ns) == 1 && ns[0].Status == "resolved"
	})
	attempts, _ := rcv.attemptLog()
	if len(attempts) != 2 {
		t.Fatalf("%d attempts, want 2 (the rejected one was not retried)", len(attempts))
	}
}
