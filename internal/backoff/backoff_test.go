// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int]time.Duration{-1: 0, 0: 0, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 1000: time.Second} {
		if got := p.Delay(n); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
	}
	if got := (Policy{Initial: time.Second, Max: time.Hour, Factor: 3}).Delay(3); got != 9*time.Second {
		t.Errorf("factor 3: %s", got)
	}
	j := Policy{Initial: time.Second, Max: 10 * time.Second, Jitter: 0.1}
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := j.Delay(2)
		lo, hi = min(lo, d), max(hi, d)
		if d > 10*time.Second {
			t.Fatalf("over Max: %s", d)
		}
	}
	if lo < 1800*time.Millisecond || hi > 2200*time.Millisecond || hi-lo < 300*time.Millisecond {
		t.Errorf("jitter ±10%% of 2s spread over [%s, %s]", lo, hi)
	}
	if d := j.Delay(100); d < 9*time.Second || d > 10*time.Second {
		t.Errorf("jittered cap: %s", d)
	}
}
