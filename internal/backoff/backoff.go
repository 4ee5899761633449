// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package backoff is the project's one exponential backoff, used wherever
// something is retried after failures: a program's restarts, a Module's
// quick stops and its daemon-reload, the systemd and MQTT connections, the
// alert outbox and the status writer.
//
// It is a pure function of the number of consecutive failures, so callers
// keep that count (which they report anyway) instead of a backoff object.
// (apimachinery's wait.Backoff is stateful and jitters upward only; one
// convention for every caller was the point.)
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy describes a backoff: Initial after the first failure, multiplied
// by Factor after each further one, at most Max, spread by Jitter.
type Policy struct {
	// Initial is the delay after the first failure.
	Initial time.Duration
	// Max caps the delay, jitter included.
	Max time.Duration
	// Factor multiplies the delay after each failure; 0 means 2.
	Factor float64
	// Jitter spreads each delay uniformly over ±Jitter of itself (0.1:
	// 0.9x to 1.1x), so that many who failed together do not retry in
	// lockstep. 0 is no jitter.
	Jitter float64
}

// Delay returns the wait after failures consecutive failures: 0 for none,
// Initial for one, then Initial*Factor^(failures-1), at most Max.
func (p Policy) Delay(failures int) time.Duration {
	if failures <= 0 || p.Initial <= 0 {
		return 0
	}
	f := p.Factor
	if f <= 0 {
		f = 2
	}
	d := float64(p.Initial)
	for i := 1; i < failures && d < float64(p.Max); i++ {
		d *= f
	}
	if p.Max > 0 {
		d = min(d, float64(p.Max))
	}
	if p.Jitter > 0 {
		d *= 1 - p.Jitter + 2*p.Jitter*rand.Float64()
		if p.Max > 0 {
			d = min(d, float64(p.Max))
		}
	}
	return time.Duration(d)
}
