// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/internal/backoff"
	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/internal/systemd/unit"
	"github.com/reconciled/reconciled/reconcile"
)

// quickStopBackoff spaces the starts of a unit that keeps stopping soon
// after each start (by the second such stop).
var quickStopBackoff = backoff.Policy{Initial: 200 * time.Millisecond, Max: 25600 * time.Millisecond}

// converge enables or disables the unit and starts, stops or restarts it
// as the spec asks. It returns how long to wait before looking again when a
// start is held back.
func (r *Reconciler) converge(ctx context.Context, log logr.Logger, name string, m *moduleState, mod *v1alpha1.Module, rec *moduleRecord, hash string, us systemd.UnitState) (time.Duration, error) {
	spec := &mod.Spec
	mgr := r.opts.Systemd[spec.Scope]
	u := spec.UnitName
	enabled := us.UnitFileState == "enabled" || us.UnitFileState == "enabled-runtime"
	switch {
	case *spec.Enabled && !enabled:
		if err := mgr.Enable(ctx, u); err != nil {
			return 0, fmt.Errorf("enable %s: %w", u, err)
		}
		log.V(1).Info("unit enabled", "unit", u)
	case !*spec.Enabled && enabled:
		if err := mgr.Disable(ctx, u); err != nil {
			return 0, fmt.Errorf("disable %s: %w", u, err)
		}
		log.V(1).Info("unit disabled", "unit", u)
	}
	ev := func(typ, reason, format string, args ...any) {
		r.opts.Events.Eventf(v1alpha1.KindModule, name, typ, reason, format, args...)
	}
	start := func(reason string) error {
		if err := mgr.Start(ctx, u); err != nil {
			return fmt.Errorf("start %s: %w", u, err)
		}
		rec.StartedHash = hash
		m.restartQueued = m.restartQueued || m.restartRequested
		m.lastStart, m.seenActive, m.restartRequested = time.Now(), false, false
		log.Info("unit started", "unit", u, "reason", reason)
		return nil
	}
	if us.JobPending {
		return 0, nil // a queued job is about to change the state; its signals bring us back
	}
	if spec.State == "Stopped" {
		m.restartRequested = false
		if len(m.waiters) > 0 {
			m.finishRestart(errStoppedModule)
		}
		// Our own stop: the next Running starts it fresh, with no
		// "stopped outside" warning.
		rec.StartedHash, m.seenActive = "", false
		switch us.ActiveState {
		case "active", "activating", "reloading":
			if err := mgr.Stop(ctx, u); err != nil {
				return 0, fmt.Errorf("stop %s: %w", u, err)
			}
			ev(events.TypeNormal, ReasonStopped, "stopping %s (state: Stopped)", u)
		case "failed":
			// Stopped clears a failure, so Running starts it again.
			if err := mgr.ResetFailed(ctx, u); err != nil {
				log.V(1).Info("reset-failed", "error", err.Error())
			}
		}
		return 0, nil
	}
	switch us.ActiveState {
	case "active", "reloading":
		m.seenActive = true
		m.quickStops = 0
		switch {
		case m.restartRequested:
			m.restartRequested = false
			if err := mgr.Restart(ctx, u); err != nil {
				return 0, fmt.Errorf("restart %s: %w", u, err)
			}
			m.restartQueued = true
			rec.StartedHash, m.lastStart, m.seenActive = hash, time.Now(), false
			ev(events.TypeNormal, ReasonRestarted, "restarting %s on request", u)
		case rec.StartedHash != hash:
			if err := mgr.Restart(ctx, u); err != nil {
				return 0, fmt.Errorf("restart %s: %w", u, err)
			}
			rec.StartedHash, m.lastStart, m.seenActive = hash, time.Now(), false
			ev(events.TypeNormal, ReasonRestarted, "restarting %s: the unit changed", u)
		}
	case "activating", "deactivating":
		// In progress; the next signal brings us back.
	case "failed":
		if rec.StartedHash == hash && !m.restartRequested {
			return 0, nil // a failed unit stays failed until its spec changes or a restart is asked for
		}
		if err := mgr.ResetFailed(ctx, u); err != nil {
			log.V(1).Info("reset-failed", "error", err.Error())
		}
		if err := start("spec changed after failure"); err != nil {
			return 0, err
		}
		ev(events.TypeNormal, ReasonStarted, "starting %s again", u)
	default: // inactive
		switch {
		case rec.StartedHash == "" || rec.StartedHash != hash || m.restartRequested:
			if err := start("start"); err != nil {
				return 0, err
			}
			ev(events.TypeNormal, ReasonStarted, "starting %s", u)
		case spec.Type == "oneshot" && us.Result == "success":
			// Finished its work; oneshot units are not kept running.
		default:
			// It ran and is inactive now: someone ran systemctl stop (or
			// the program ended on its own). The spec says Running.
			if d := time.Since(m.lastStart); d < 10*time.Second && !m.seenActive {
				m.quickStops++
				if m.quickStops > 1 {
					return quickStopBackoff.Delay(m.quickStops), nil
				}
			}
			ev(events.TypeWarning, ReasonStoppedExternally, "%s was stopped outside reconciled (systemctl stop?); starting it again as the spec says Running", u)
			if err := start("reverted an outside stop"); err != nil {
				return 0, err
			}
		}
	}
	return 0, nil
}

// reconcileDeleted stops, disables and removes the unit of a deleted
// Module.
func (r *Reconciler) reconcileDeleted(ctx context.Context, log logr.Logger, name string) (reconcile.Result, error) {
	rec, ok := r.records.Get(name)
	if ok {
		if err := r.removeUnit(ctx, log, name, rec); err != nil {
			return reconcile.Result{}, err
		}
	}
	r.active.DeleteLabelValues(name)
	r.mu.Lock()
	delete(r.modules, name)
	r.mu.Unlock()
	return reconcile.Result{}, nil
}

// removeUnit stops, disables and removes a unit the controller wrote, and
// forgets it. A unit file that is no longer ours is left in place.
func (r *Reconciler) removeUnit(ctx context.Context, log logr.Logger, name string, rec moduleRecord) error {
	mgr := r.opts.Systemd[rec.Scope]
	if mgr == nil {
		return fmt.Errorf("cannot remove unit %s of module %q: no systemd for scope %s", rec.Unit, name, rec.Scope)
	}
	data, err := os.ReadFile(rec.Path)
	ours := false
	if err == nil {
		owner, ok := unit.IsManaged(data)
		ours = ok && owner == name
	}
	if ours {
		if err := mgr.Stop(ctx, rec.Unit); err != nil && !systemd.IsNoSuchUnit(err) {
			return fmt.Errorf("stop %s: %w", rec.Unit, err)
		}
		if err := mgr.Disable(ctx, rec.Unit); err != nil {
			log.Info("cannot disable the unit of a deleted module; removing it anyway", "unit", rec.Unit, "error", err.Error())
		}
		if err := os.Remove(rec.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		atomicfile.SyncDir(filepath.Dir(rec.Path))
		if err := mgr.Reload(ctx); err != nil {
			return fmt.Errorf("daemon-reload: %w", err)
		}
		r.reloads.WithLabelValues(mgr.Scope(), "success").Inc()
		log.Info("unit removed", "unit", rec.Unit, "path", rec.Path)
		r.opts.Events.Eventf(v1alpha1.KindModule, name, events.TypeNormal, "Removed", "stopped, disabled and removed %s", rec.Path)
	}
	r.records.Delete(name)
	r.mu.Lock()
	if r.byUnit[rec.Scope+"/"+rec.Unit] == name {
		delete(r.byUnit, rec.Scope+"/"+rec.Unit)
	}
	r.mu.Unlock()
	return nil
}
