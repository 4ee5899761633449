// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package module is the Module controller: each Module is rendered into a
// systemd unit (internal/systemd/unit) and driven over D-Bus
// (internal/systemd): written, reloaded in batches, enabled, started,
// restarted on change or request, stopped and removed, with its state from
// systemd's signals.
package module

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/internal/systemd/unit"
	"github.com/reconciled/reconciled/kvlog"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// dbusTimeout bounds one Module reconcile's calls to systemd.
const dbusTimeout = time.Minute

// Reasons used in Module conditions and events.
const (
	ReasonUnitConflict       = "UnitConflict"
	ReasonInvalidUnit        = "InvalidUnit"
	ReasonScopeUnavailable   = "ScopeUnavailable"
	ReasonUnitWritten        = "UnitWritten"
	ReasonStarted            = "Started"
	ReasonStopped            = "Stopped"
	ReasonRestarted          = "Restarted"
	ReasonStoppedExternally  = "StoppedExternally"
	ReasonUnitFailed         = "UnitFailed"
	ReasonActive             = "Active"
	ReasonPending            = "Pending"
	ReasonSystemdError       = "SystemdError"
	ReasonSystemdUnavailable = "SystemdUnavailable"
	ReasonCrashLoop          = "CrashLoop"
)

// Options configures a Reconciler.
type Options struct {
	Store    controllers.ResourceStore
	StateDir string
	Log      logr.Logger
	// Systemd has one manager per scope (system, user); a scope without a
	// manager makes its Modules fail with ScopeUnavailable.
	Systemd map[string]Systemd
	// Registerer receives module metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Events records what happens to units; nil records nothing.
	Events events.Recorder
	// Workers is the number of concurrent reconciles (default 8).
	Workers int
}

// moduleRecord is what the controller remembers on disk about a unit it
// wrote, so it can clean up after a daemon restart.
type moduleRecord struct {
	Unit  string `json:"unit"`
	Scope string `json:"scope"`
	// Path is the unit file as the daemon sees it.
	Path string `json:"path"`
	// StartedHash is the hash of the unit file content the unit was last
	// (re)started with: a different one while it runs means restart.
	StartedHash string `json:"startedHash,omitempty"`
}

// Reconciler makes systemd units match Module resources.
type Reconciler struct {
	opts    Options
	log     logr.Logger
	store   controllers.ResourceStore
	records *kvlog.Map[moduleRecord]
	ctrl    *reconcile.Controller

	reloads *prometheus.CounterVec
	active  *prometheus.GaugeVec

	mu      sync.Mutex
	modules map[string]*moduleState
	byUnit  map[string]string // scope/unit -> module

	reload *reloader
}

// NewReconciler opens the ownership records; call SetupWithEngine,
// then Start.
func NewReconciler(o Options) (*Reconciler, error) {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Events == nil {
		o.Events = controllers.DiscardRecorder{}
	}
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	records, err := controllers.OpenRecords[moduleRecord](filepath.Join(o.StateDir, "modules.json"), o.Log.WithName("module-records"), o.Events)
	if err != nil {
		return nil, fmt.Errorf("module records: %w", err)
	}
	r := &Reconciler{
		opts: o, log: o.Log, store: o.Store, records: records,
		modules: map[string]*moduleState{},
		byUnit:  map[string]string{},
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciled_systemd_reloads_total", Help: "daemon-reloads the Module controller asked systemd for, by scope and result.",
		}, []string{"scope", "result"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_module_active", Help: "1 when the Module's unit is active, 0 otherwise.",
		}, []string{"name"}),
	}
	r.reload = &reloader{r: r, pending: map[string]map[string]bool{}, lastErr: map[string]error{}}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.reloads, r.active)
	}
	records.Range(func(name string, rec moduleRecord) {
		r.byUnit[rec.Scope+"/"+rec.Unit] = name
	})
	return r, nil
}

// SetupWithEngine registers the controller, subscribes to store changes and
// enqueues the Modules of the ownership records (their resources may have
// been deleted while the daemon was down).
func (r *Reconciler) SetupWithEngine(e *reconcile.Engine) error {
	c, err := controllers.WatchKind(e, r.store, v1alpha1.KindModule, r, reconcile.ControllerOptions{MaxConcurrentReconciles: r.opts.Workers})
	if err != nil {
		return err
	}
	r.ctrl = c
	r.records.Range(func(name string, _ moduleRecord) { c.Enqueue(name) })
	return r.reload.setup(e)
}

// Start connects to every systemd manager and follows their signals until
// ctx is done.
func (r *Reconciler) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for scope, m := range r.opts.Systemd {
		wg.Go(func() {
			m.Run(ctx, func(u string) { r.unitChanged(scope, u) }, r.resyncAll)
		})
	}
	wg.Wait()
	return nil
}

// Close flushes the ownership records; call it after the engine stopped.
func (r *Reconciler) Close() { r.records.Close() }

// RequestRestart restarts a Module's unit now.
func (r *Reconciler) RequestRestart(name string) error {
	if _, ok := r.store.Get(v1alpha1.KindModule, name); !ok {
		return fmt.Errorf("module %q: %w", name, resources.ErrNotFound)
	}
	m := r.state(name)
	m.mu.Lock()
	m.restartRequested = true
	m.mu.Unlock()
	r.enqueue(name)
	return nil
}

// Journal returns the last n journal lines of a Module's unit.
func (r *Reconciler) Journal(ctx context.Context, name string, n int) ([]string, error) {
	obj, ok := r.store.Get(v1alpha1.KindModule, name)
	if !ok {
		return nil, fmt.Errorf("module %q: %w", name, resources.ErrNotFound)
	}
	spec := obj.(*v1alpha1.Module).Spec
	mgr := r.opts.Systemd[spec.Scope]
	if mgr == nil {
		return nil, fmt.Errorf("module %q: no systemd for scope %s", name, spec.Scope)
	}
	return mgr.Journal(ctx, spec.UnitName, n)
}

// existing returns the state of name, or nil when it has none (deleted).
func (r *Reconciler) existing(name string) *moduleState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.modules[name]
}

func (r *Reconciler) state(name string) *moduleState {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.modules[name]
	if m == nil {
		m = &moduleState{nRestarts: -1}
		r.modules[name] = m
	}
	return m
}

func (r *Reconciler) enqueue(name string) {
	if r.ctrl != nil {
		r.ctrl.Enqueue(name)
	}
}

// unitChanged maps a systemd signal to the Module that owns the unit.
func (r *Reconciler) unitChanged(scope, unitName string) {
	r.mu.Lock()
	name, ok := r.byUnit[scope+"/"+unitName]
	r.mu.Unlock()
	if ok {
		r.enqueue(name)
	}
}

// resyncAll looks at every Module again (after a reconnect).
func (r *Reconciler) resyncAll() {
	for _, n := range r.store.Names(v1alpha1.KindModule) {
		r.enqueue(n)
	}
	r.records.Range(func(name string, _ moduleRecord) { r.enqueue(name) })
}

// Reconcile implements reconcile.Reconciler: it renders the unit, owns
// and writes its file, waits for systemd to reload it, and converges the
// unit to the spec (see converge), reporting systemd's state.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	// A systemd that stops answering must not hold a worker for ever.
	ctx, cancel := context.WithTimeout(ctx, dbusTimeout)
	defer cancel()
	obj, exists := r.store.Get(v1alpha1.KindModule, req.Name)
	m := r.state(req.Name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !exists {
		if r.store.Known(v1alpha1.KindModule, req.Name) || !r.store.Settled() {
			// Only in an invalid file (or not loaded yet): bad input
			// never tears a unit down.
			return reconcile.Result{}, nil
		}
		if len(m.waiters) > 0 {
			m.finishRestart(fmt.Errorf("module %q was deleted", req.Name))
		}
		return r.reconcileDeleted(ctx, log, req.Name)
	}
	mod := obj.(*v1alpha1.Module)
	st := v1alpha1.ModuleStatus{CommonStatus: controllers.StatusFor(mod)}
	fail := func(phase, reason, msg string) (reconcile.Result, error) {
		st.Phase = phase
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: mod.Generation})
		r.writeStatus(log, req.Name, st)
		if reason == ReasonUnitConflict {
			// Nothing signals the foreign unit going away: look again.
			return reconcile.Result{RequeueAfter: time.Minute}, nil
		}
		return reconcile.Result{}, nil
	}
	u, problem := r.render(req.Name, mod)
	if problem != nil {
		return fail(problem.phase, problem.reason, problem.msg)
	}
	rec, existing, problem, err := r.own(ctx, log, req.Name, mod, u)
	if err != nil {
		return reconcile.Result{}, err
	}
	if problem != nil {
		return fail(problem.phase, problem.reason, problem.msg)
	}
	if !bytes.Equal(existing, u.content) {
		if err := atomicfile.Write(u.path, u.content, 0o644); err != nil {
			return reconcile.Result{}, err
		}
		log.V(1).Info("unit file written", "path", u.path)
		r.opts.Events.Eventf(v1alpha1.KindModule, req.Name, events.TypeNormal, ReasonUnitWritten, "%s", u.path)
		m.reloadPending = true
		r.reload.request(mod.Spec.Scope, req.Name)
	}
	if m.reloadPending {
		st.Phase = v1alpha1.ModuleInactive
		msg := "waiting for systemd to reload"
		if rerr := r.reload.err(mod.Spec.Scope); rerr != nil {
			msg = "daemon-reload failed, retrying: " + rerr.Error()
		}
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonPending, Message: msg, ObservedGeneration: mod.Generation})
		r.writeTransient(log, req.Name, st)
		return reconcile.Result{}, nil // requeued after the reload
	}
	return r.observe(ctx, log, req.Name, m, mod, u, rec, st)
}

// unitFile is a Module's unit as the controller writes it.
type unitFile struct {
	mgr     Systemd
	content []byte
	hash    string // of content
	path    string
}

// problem is why a Module cannot be converged now, as its status says.
type problem struct{ phase, reason, msg string }

// render picks the Module's systemd and renders its unit file.
func (r *Reconciler) render(name string, mod *v1alpha1.Module) (unitFile, *problem) {
	spec := &mod.Spec
	mgr := r.opts.Systemd[spec.Scope]
	if mgr == nil {
		return unitFile{}, &problem{v1alpha1.ModuleFailed, ReasonScopeUnavailable, fmt.Sprintf("this daemon has no connection to the %s systemd", spec.Scope)}
	}
	if err := unit.ValidUnitName(spec.UnitName); err != nil {
		return unitFile{}, &problem{v1alpha1.ModuleFailed, ReasonInvalidUnit, err.Error()}
	}
	if !mgr.Connected() {
		// Nothing is written while systemd does not answer; connecting
		// looks at every Module again.
		return unitFile{}, &problem{v1alpha1.ModuleInactive, ReasonSystemdUnavailable, fmt.Sprintf("waiting for the %s systemd at %s", spec.Scope, mgr.Address())}
	}
	content, err := unit.Render(name, spec)
	if err != nil {
		return unitFile{}, &problem{v1alpha1.ModuleFailed, ReasonInvalidUnit, err.Error()}
	}
	sum := sha256.Sum256(content)
	return unitFile{mgr: mgr, content: content, hash: hex.EncodeToString(sum[:]), path: filepath.Join(mgr.UnitDir(), spec.UnitName)}, nil
}

// own makes sure the unit's file is the Module's to write: a unit renamed
// or moved to the other scope is removed first; a file reconciled did not
// write for this Module, or a unit defined elsewhere, is a conflict. It
// keeps the ownership record (on disk before the unit file, so a crash in
// between still lets a restarted daemon clean up) and returns the file's
// current content.
func (r *Reconciler) own(ctx context.Context, log logr.Logger, name string, mod *v1alpha1.Module, u unitFile) (moduleRecord, []byte, *problem, error) {
	spec := &mod.Spec
	rec, hadRec := r.records.Get(name)
	if hadRec && (rec.Unit != spec.UnitName || rec.Scope != spec.Scope) {
		if err := r.removeUnit(ctx, log, name, rec); err != nil {
			return rec, nil, nil, err
		}
		hadRec, rec = false, moduleRecord{}
	}
	existing, err := os.ReadFile(u.path)
	switch {
	case err == nil:
		if owner, ok := unit.IsManaged(existing); !ok || owner != name {
			what := "was not written by reconciled"
			if ok {
				what = fmt.Sprintf("belongs to Module %q", owner)
			}
			r.opts.Events.Eventf(v1alpha1.KindModule, name, events.TypeWarning, ReasonUnitConflict, "%s %s; leaving it alone", u.path, what)
			return rec, nil, &problem{v1alpha1.ModuleFailed, ReasonUnitConflict, fmt.Sprintf("%s %s; reconciled never changes or removes it (choose another unitName or remove the file)", u.path, what)}, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return rec, nil, nil, err
	case !hadRec:
		// Not in our folder: it must not exist anywhere else either (a
		// unit in /lib/systemd/system or /run, from a generator, or
		// drop-ins) — writing ours would override or change it.
		if others := u.mgr.OtherDefinitions(spec.UnitName); len(others) > 0 {
			r.opts.Events.Eventf(v1alpha1.KindModule, name, events.TypeWarning, ReasonUnitConflict, "%s is already defined by %s; leaving it alone", spec.UnitName, strings.Join(others, ", "))
			return rec, nil, &problem{v1alpha1.ModuleFailed, ReasonUnitConflict, fmt.Sprintf("%s is already defined by %s; reconciled never overrides or extends a unit it did not write (choose another unitName)", spec.UnitName, strings.Join(others, ", "))}, nil
		}
	}
	if !hadRec || rec.Path != u.path {
		if !hadRec {
			rec = moduleRecord{Unit: spec.UnitName, Scope: spec.Scope}
		}
		rec.Path = u.path
		r.records.Put(name, rec)
	}
	r.mu.Lock()
	r.byUnit[spec.Scope+"/"+spec.UnitName] = name
	r.mu.Unlock()
	return rec, existing, nil, nil
}

// observe reads the unit's state, converges it to the spec, watches for a
// crash loop and writes the status: the state just read (what converge
// asked systemd for arrives as signals, which bring the next reconcile).
func (r *Reconciler) observe(ctx context.Context, log logr.Logger, name string, m *moduleState, mod *v1alpha1.Module, u unitFile, rec moduleRecord, st v1alpha1.ModuleStatus) (reconcile.Result, error) {
	spec := &mod.Spec
	st.Phase = v1alpha1.ModuleInactive
	us, err := u.mgr.State(ctx, spec.UnitName)
	if err != nil {
		return r.systemdError(log, name, st, mod, err)
	}
	if us.NeedDaemonReload {
		// A failed reload is retried with backoff by the reloader.
		m.reloadPending = true
		r.reload.request(spec.Scope, name)
		return reconcile.Result{}, nil
	}
	before, started := rec, m.lastStart
	settle := m.observeRestart(spec.UnitName, us, spec.Type == "oneshot", time.Now())
	wait, err := r.converge(ctx, log, name, m, mod, &rec, u.hash, us)
	if err != nil {
		if len(m.waiters) > 0 && !m.restartRequested {
			m.finishRestart(err) // the restart (or start) the waiters asked for failed
		}
		return r.systemdError(log, name, st, mod, err)
	}
	if rec != before {
		r.records.Put(name, rec)
	}
	if m.lastStart.After(started) {
		m.resetCrashLoop() // we (re)started it just now
	}
	entered, recheck := m.observeRestarts(us, time.Now())
	if entered {
		m.crashLoop = fmt.Sprintf("%s was restarted by systemd %d times without staying active for %s", spec.UnitName, m.loopRestarts, crashLoopSettle)
		if lines, err := u.mgr.Journal(ctx, spec.UnitName, 1); err == nil && len(lines) > 0 {
			m.crashLoop += "; last journal line: " + lines[len(lines)-1]
		}
		log.Info("unit is in a crash loop", "unit", spec.UnitName, "restarts", m.loopRestarts)
		r.opts.Events.Eventf(v1alpha1.KindModule, name, events.TypeWarning, ReasonCrashLoop, "%s", m.crashLoop)
	}
	for _, d := range []time.Duration{recheck, settle} {
		if d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	st = moduleStatus(mod, us)
	if m.crashLoop != "" {
		st.Phase = v1alpha1.ModuleFailed
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonCrashLoop, Message: m.crashLoop, ObservedGeneration: mod.Generation})
	}
	r.writeStatus(log, name, st)
	active := 0.0
	if us.ActiveState == "active" {
		active = 1
	}
	r.active.WithLabelValues(name).Set(active)
	return reconcile.Result{RequeueAfter: wait}, nil
}

// systemdError reports a failed D-Bus call in the status and retries with
// backoff.
func (r *Reconciler) systemdError(log logr.Logger, name string, st v1alpha1.ModuleStatus, mod *v1alpha1.Module, err error) (reconcile.Result, error) {
	st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonSystemdError, Message: err.Error(), ObservedGeneration: mod.Generation})
	if st.Phase == "" {
		st.Phase = v1alpha1.ModuleInactive
	}
	r.writeStatus(log, name, st)
	return reconcile.Result{}, err
}

// moduleStatus turns the unit's state into the resource's status.
func moduleStatus(mod *v1alpha1.Module, us systemd.UnitState) v1alpha1.ModuleStatus {
	st := v1alpha1.ModuleStatus{CommonStatus: controllers.StatusFor(mod),
		UnitFile: us.FragmentPath, LoadState: us.LoadState, ActiveState: us.ActiveState, SubState: us.SubState,
		MainPID: us.MainPID, NRestarts: us.NRestarts, Result: us.Result,
	}
	if !us.Since.IsZero() {
		t := metav1.NewTime(us.Since.Truncate(time.Second))
		st.Since = &t
	}
	switch us.ActiveState {
	case "active", "reloading":
		st.Phase = v1alpha1.ModuleActive
	case "activating":
		st.Phase = v1alpha1.ModuleActivating
	case "deactivating":
		st.Phase = v1alpha1.ModuleDeactivating
	case "failed":
		st.Phase = v1alpha1.ModuleFailed
	default:
		st.Phase = v1alpha1.ModuleInactive
	}
	want := "active"
	if mod.Spec.State == "Stopped" {
		want = "inactive"
	}
	ready := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonActive,
		Message: fmt.Sprintf("%s is %s (%s)", mod.Spec.UnitName, us.ActiveState, us.SubState), ObservedGeneration: mod.Generation}
	switch {
	case us.ActiveState == "failed":
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonUnitFailed
		ready.Message = fmt.Sprintf("%s failed (result: %s)", mod.Spec.UnitName, us.Result)
	case us.ActiveState != want && !(mod.Spec.Type == "oneshot" && us.Result == "success"):
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonPending
	case mod.Spec.State == "Stopped":
		ready.Reason = ReasonStopped
	}
	st.SetCondition(ready)
	return st
}

func (r *Reconciler) writeStatus(log logr.Logger, name string, st v1alpha1.ModuleStatus) {
	if err := r.store.UpdateStatus(v1alpha1.KindModule, name, st); err != nil {
		log.V(1).Info("status not updated", "error", err.Error())
	}
}

// writeTransient publishes a short-lived status (waiting for a reload) to
// the API at once and to the file only if it lasts.
func (r *Reconciler) writeTransient(log logr.Logger, name string, st v1alpha1.ModuleStatus) {
	if err := r.store.UpdateTransientStatus(v1alpha1.KindModule, name, st, controllers.TransientSettle); err != nil {
		log.V(1).Info("status not updated", "error", err.Error())
	}
}
