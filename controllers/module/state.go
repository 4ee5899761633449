// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"sync"
	"time"

	"github.com/reconciled/reconciled/internal/systemd"
)

// Crash-loop detection of Modules: systemd restarting a unit (Restart=)
// crashLoopRestarts times without it staying active for crashLoopSettle
// is a failure, though systemd shows it as "activating (auto-restart)"
// and, for Type=simple, briefly active in each cycle.
const (
	crashLoopRestarts = 3
	crashLoopSettle   = 30 * time.Second
)

// moduleState is the in-memory state of one Module.
type moduleState struct {
	mu               sync.Mutex
	reloadPending    bool
	restartRequested bool
	seenActive       bool // active since our last start: inactive now means someone stopped it
	lastStart        time.Time
	quickStops       int // consecutive stops soon after our start (backoff)

	// crash-loop detection (see crashLoopRestarts)
	nRestarts    int64     // systemd's NRestarts at the last look; -1 before the first
	loopRestarts int64     // systemd restarts since the unit last stayed active for crashLoopSettle
	activeSince  time.Time // when the unit was first seen active since its last restart
	crashLoop    string    // the message while in a crash loop, else ""

	// waiters are RestartAndWait calls; restartQueued is set once the
	// restart they asked for was queued with systemd, whose outcome is the
	// unit's next state without a job (observeRestart).
	waiters       []chan error
	restartQueued bool
	// settleFrom is when the restarted unit was first seen active (with
	// systemd's NRestarts then), for restartSettle.
	settleFrom     time.Time
	settleRestarts int64
}

// observeRestarts updates the crash-loop detection with the unit's state
// and reports whether the unit just entered a crash loop. It returns when
// to look again (a unit active since its last restart leaves the loop
// after crashLoopSettle without any signal).
func (m *moduleState) observeRestarts(us systemd.UnitState, now time.Time) (entered bool, recheck time.Duration) {
	switch {
	case m.nRestarts < 0 || us.NRestarts < m.nRestarts:
		// First look, or systemd flushed the counter (a start on request).
	case us.NRestarts > m.nRestarts:
		m.loopRestarts += us.NRestarts - m.nRestarts
		m.activeSince = time.Time{}
	}
	m.nRestarts = us.NRestarts
	if us.ActiveState == "active" || us.ActiveState == "reloading" {
		if m.activeSince.IsZero() {
			m.activeSince = now
		}
		if stable := now.Sub(m.activeSince); stable >= crashLoopSettle {
			m.loopRestarts, m.crashLoop = 0, ""
		} else if m.loopRestarts > 0 {
			recheck = crashLoopSettle - stable
		}
	} else {
		m.activeSince = time.Time{}
	}
	return m.crashLoop == "" && m.loopRestarts >= crashLoopRestarts, recheck
}

// resetCrashLoop forgets the crash-loop state when the controller itself
// (re)starts the unit: a new spec or a requested restart starts afresh.
func (m *moduleState) resetCrashLoop() {
	m.loopRestarts, m.crashLoop, m.activeSince = 0, "", time.Time{}
}
