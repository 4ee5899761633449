// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package controllers holds one reconciler per kind. Each wires itself to
// the engine with SetupWithEngine and acts on the world through its own
// subpackages (process supervision lives in controllers/process/...).
// Package process is the Process controller: it supervises one program per
// Process (spawn, restart with backoff, stop, sd_notify readiness and
// watchdog, readiness probes, restartOnChange, socket activation) and adopts
// the programs an earlier daemon left running. The operating-system layer
// is internal/supervise; logs are internal/logstore.
package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/backoff"
	"github.com/reconciled/reconciled/internal/logstore"
	"github.com/reconciled/reconciled/internal/sockets"
	"github.com/reconciled/reconciled/internal/supervise"
	"github.com/reconciled/reconciled/kvlog"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// Reasons used in Process conditions and lastExit.
const (
	ReasonRunning     = "Running"
	ReasonStarting    = "Starting"
	ReasonNotReady    = "NotReady"
	ReasonBackOff     = "BackOff"
	ReasonStartFailed = "StartFailed"
	// ReasonSocketBindFailed: a socket of spec.sockets could not be bound;
	// the start is retried with the backoff.
	ReasonSocketBindFailed = "SocketBindFailed"
	ReasonCompleted        = "Completed"
	ReasonFailed           = "Failed"
	ReasonStopping         = "Stopping"
	ReasonStopped          = "Stopped"
	ReasonSpecChanged      = "SpecChanged"
	ReasonRestartRequested = "RestartRequested"
	ReasonFilesChanged     = "FilesChanged"
	ReasonWatchdogTimeout  = "WatchdogTimeout"
	ReasonDeleted          = "Deleted"
	ReasonDuplicate        = "DuplicateProgram"
)

// logKind is the log store folder of Process output: <state-dir>/logs/process/<name>/.
const logKind = "process"

// EnvMarker is set in every supervised program's environment to
// "<instance>/<name>" so a restarted daemon can find programs it started
// even if their adoption record was never written.
const EnvMarker = "RECONCILED_PROCESS"

// Options configures a Reconciler.
type Options struct {
	Store    controllers.ResourceStore
	StateDir string
	Log      logr.Logger
	// Registerer receives process metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// LogMaxBytes bounds each log store file (default 10 MiB).
	LogMaxBytes int64
	// Workers is the number of concurrent reconciles (default 4).
	Workers int
	// Events records what happens to programs; nil records nothing.
	Events events.Recorder
}

// Reconciler supervises Process resources.
type Reconciler struct {
	opts     Options
	log      logr.Logger
	store    controllers.ResourceStore
	logs     *logstore.Store
	logGuard *logstore.Guard
	// guardWarned is set once the log guard failed to watch a file.
	guardWarned atomic.Bool
	reaper      *supervise.Reaper
	records     *kvlog.Map[record]
	instance    string
	ctrl        *reconcile.Controller
	files       *fileWatcher

	restartsTotal *prometheus.CounterVec
	up            *prometheus.GaugeVec

	mu    sync.Mutex
	procs map[string]*proc
}

// NewReconciler prepares the supervisor: the reaper, the log store
// and the state folders. Call Adopt, then SetupWithEngine.
func NewReconciler(o Options) (*Reconciler, error) {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Events == nil {
		o.Events = controllers.DiscardRecorder{}
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	o.StateDir = abs
	if err := os.MkdirAll(filepath.Join(abs, "logs"), 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	records, err := controllers.OpenRecords[record](filepath.Join(abs, "processes.json"), o.Log.WithName("adoption-records"), o.Events)
	if err != nil {
		return nil, fmt.Errorf("adoption records: %w", err)
	}
	if _, err := supervise.RaiseFDLimit(); err != nil {
		o.Log.Error(err, "cannot raise the open file limit")
	}
	reaper, err := supervise.NewReaper()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	r := &Reconciler{
		opts: o, log: o.Log, store: o.Store, reaper: reaper, records: records,
		logs:     &logstore.Store{Root: filepath.Join(abs, "logs"), MaxBytes: o.LogMaxBytes},
		instance: hex.EncodeToString(sum[:6]),
		procs:    map[string]*proc{},
		restartsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciled_process_restarts_total", Help: "Starts of a Process after its first, by name.",
		}, []string{"name"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_process_up", Help: "1 when the Process's program is running, else 0.",
		}, []string{"name"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.restartsTotal, r.up)
	}
	fw, err := newFileWatcher(r.filesChanged)
	if err != nil {
		return nil, err
	}
	r.files = fw
	r.logGuard, err = logstore.NewGuard(r.logs, logKind, func(name string) {
		if p := r.lookup(name, false); p != nil {
			r.rotateLog(p)
		}
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// SetupWithEngine registers the controller and subscribes to store changes.
func (r *Reconciler) SetupWithEngine(e *reconcile.Engine) error {
	c, err := controllers.WatchKind(e, r.store, v1alpha1.KindProcess, r, reconcile.ControllerOptions{MaxConcurrentReconciles: r.opts.Workers})
	if err != nil {
		return err
	}
	r.ctrl = c
	r.mu.Lock()
	for n := range r.procs {
		c.Enqueue(n) // adopted programs whose resource may be gone
	}
	r.mu.Unlock()
	return nil
}

// Start keeps the log store within its bound until ctx is done: the log
// guard checks a file soon after it is written, and a sweep every 30
// seconds checks every file (the backstop for files the guard cannot
// watch). Idle cost: one stat per logged program every 30 seconds.
func (r *Reconciler) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.logGuard.Run(ctx) })
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, p := range r.allProcs() {
				r.rotateLog(p)
			}
		}
	}
}

// rotateLog rotates the log store file of p if it is over its size.
func (r *Reconciler) rotateLog(p *proc) {
	// Under p.mu: Rotate must not run beside Remove on deletion.
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.usesLogStore || p.deleted {
		return
	}
	rotated, err := r.logs.Rotate(logKind, p.name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Error(err, "log rotation failed", "name", p.name)
	}
	if rotated {
		p.runStart, p.prevRunStart = 0, -1 // the offsets were in the old content
	}
}

// guardLog has the log guard watch p's log store file. Called with p.mu
// held once p's program runs.
func (r *Reconciler) guardLog(p *proc) {
	if !p.usesLogStore {
		return
	}
	if err := r.logGuard.Watch(p.name); err != nil && !r.guardWarned.Swap(true) {
		r.log.Info("log files are checked every 30s only, not as they are written", "name", p.name, "reason", err.Error())
	}
}

// LogPath returns the log store file of a Process and whether the Process
// writes to the log store (it may name its own files instead).
func (r *Reconciler) LogPath(name string) (string, bool) {
	if obj, ok := r.store.Get(v1alpha1.KindProcess, name); ok {
		spec := obj.(*v1alpha1.Process).Spec
		if spec.Stdout != "" && spec.Stderr != "" {
			return spec.Stdout, false
		}
	}
	return r.logs.Path(logKind, name), true
}

// PreviousRun returns the log store file of a Process and the byte range
// in it that the run before the current one wrote (logs --previous). ok is
// false when that is not known: the Process writes its own files, has run
// only once, or the log was rotated or the daemon restarted since.
func (r *Reconciler) PreviousRun(name string) (path string, from, to int64, ok bool) {
	p := r.lockProc(name)
	if p == nil {
		return "", 0, 0, false
	}
	defer p.mu.Unlock()
	if !p.usesLogStore || !p.everStarted || p.prevRunStart < 0 || p.prevRunStart > p.runStart {
		return "", 0, 0, false
	}
	return r.logs.Path(logKind, name), p.prevRunStart, p.runStart, true
}

// RequestRestart restarts a Process now (a running program is stopped and
// started again; one waiting in BackOff or finished is started at once).
func (r *Reconciler) RequestRestart(name string) error {
	if _, ok := r.store.Get(v1alpha1.KindProcess, name); !ok {
		return fmt.Errorf("process %q: %w", name, resources.ErrNotFound)
	}
	p := r.lookup(name, true)
	p.mu.Lock()
	p.restartRequested = true
	p.mu.Unlock()
	r.enqueue(name)
	return nil
}

// lookup returns the proc of name, creating it when create is set. It takes
// only the map lock. Lock order: p.mu may be held while taking r.mu, never
// the other way round.
func (r *Reconciler) lookup(name string, create bool) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[name]
	if p == nil && create {
		p = &proc{name: name}
		r.procs[name] = p
	}
	return p
}

// lockProc returns the proc of name with its lock held, or nil.
func (r *Reconciler) lockProc(name string) *proc {
	p := r.lookup(name, false)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		return nil
	}
	return p
}

// allProcs snapshots the procs.
func (r *Reconciler) allProcs() []*proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*proc, 0, len(r.procs))
	for _, p := range r.procs {
		out = append(out, p)
	}
	return out
}

// filesChanged marks a Process whose restartOnChange files changed.
func (r *Reconciler) filesChanged(name string) {
	if p := r.lockProc(name); p != nil {
		p.filesDirty = true
		p.mu.Unlock()
	}
	r.enqueue(name)
}

func (r *Reconciler) enqueue(name string) {
	if r.ctrl != nil {
		r.ctrl.Enqueue(name)
	}
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	obj, exists := r.store.Get(v1alpha1.KindProcess, req.Name)
	p := r.lookup(req.Name, exists)
	if p == nil {
		return reconcile.Result{}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deleted {
		// Deleted by an earlier reconcile; a new resource of the same
		// name gets a fresh proc on the next event.
		if exists {
			r.enqueue(req.Name)
		}
		return reconcile.Result{}, nil
	}
	now := time.Now()
	if !exists {
		if p.running && !p.seen && (r.store.Known(v1alpha1.KindProcess, req.Name) || !r.store.Settled()) {
			// Adopted at start, but its resource is (so far) only in an
			// invalid or unparsable file: bad input never tears anything
			// down. Look again when the files change, or in a while.
			log.Info("keeping adopted program whose resource is currently invalid", "pid", p.pid)
			return reconcile.Result{RequeueAfter: 30 * time.Second}, nil
		}
		return r.reconcileDeleted(log, p, now), nil
	}
	pr := obj.(*v1alpha1.Process)
	p.seen = true
	if !p.initialized {
		p.initFromStatus(&pr.Status)
		// The counter starts at the RESTARTS the status carries (written
		// before a daemon restart, or a delete and re-create), so the two
		// never disagree.
		r.restartsTotal.WithLabelValues(p.name).Add(float64(p.restarts))
	}
	specHash := resources.SpecHash(pr)
	restartedAt := pr.Annotations[v1alpha1.AnnotationRestartedAt]
	if p.specHash == specUnknown {
		// Finished before the daemon restarted: that run counts as this spec's.
		p.specHash, p.restartedAt = specHash, restartedAt
	}
	if p.pendingExit != nil {
		r.handleExit(log, p, pr, now)
	}

	var wait time.Duration
	switch {
	case p.running && p.stopping:
		wait = r.continueStop(log, p, now)
	case p.running:
		if reason := r.restartReason(p, pr, specHash, restartedAt, now); reason != "" {
			log.Info("restarting program", "reason", reason, "pid", p.pid)
			r.opts.Events.Eventf(v1alpha1.KindProcess, p.name, events.TypeNormal, reason, "restarting pid %d", p.pid)
			p.restartAfterStop = true
			wait = r.beginStop(log, p, reason, now)
			break
		}
		wait = r.superviseRunning(log, p, pr, now)
	default:
		wait = r.reconcileStopped(log, p, pr, specHash, restartedAt, now)
	}
	r.writeStatus(log, p, pr)
	if len(p.duplicates) > 0 && (wait == 0 || wait > duplicateRecheck) {
		wait = duplicateRecheck // nothing else says when they are gone
	}
	return reconcile.Result{RequeueAfter: wait}, nil
}

// duplicateRecheck is how often a Process with duplicates looks whether
// they are still there.
const duplicateRecheck = 10 * time.Second

// restartReason says why a running program must be restarted, or "".
func (r *Reconciler) restartReason(p *proc, pr *v1alpha1.Process, specHash, restartedAt string, now time.Time) string {
	switch {
	case p.specHash != "" && p.specHash != specHash:
		return ReasonSpecChanged
	case p.restartRequested || restartedAt != p.restartedAt:
		return ReasonRestartRequested
	case p.filesDirty && len(pr.Spec.RestartOnChange) > 0:
		p.filesDirty = false
		if h := hashFiles(pr.Spec.RestartOnChange); h != p.filesHash {
			return ReasonFilesChanged
		}
	case p.watchdogLapsed(now):
		return ReasonWatchdogTimeout
	}
	return ""
}

// reconcileStopped decides whether and when a program that is not running
// starts, and starts it when the time has come.
func (r *Reconciler) reconcileStopped(log logr.Logger, p *proc, pr *v1alpha1.Process, specHash, restartedAt string, now time.Time) time.Duration {
	changed := p.specHash != "" && (p.specHash != specHash || restartedAt != p.restartedAt)
	if p.restartRequested || changed {
		// A new spec or an explicit restart starts at once and afresh,
		// whatever the backoff, a failed start or a finished run said (the
		// kubelet starts a changed container at once too).
		p.done = false
		p.nextStartAt = now
		p.streak = 0
		p.startErr, p.startReason = "", ""
	}
	if p.done {
		// Finished for good: clients are refused rather than left
		// waiting for a program that will not come.
		r.closeSockets(p, false)
		return 0
	}
	if now.Before(p.nextStartAt) {
		return p.nextStartAt.Sub(now)
	}
	if err := r.start(log, p, pr, specHash, restartedAt, now); err != nil {
		// The spec tried last: a change of it starts again at once.
		p.specHash, p.restartedAt = specHash, restartedAt
		log.Error(err, "cannot start program")
		p.startErr, p.startReason = err.Error(), ReasonStartFailed
		var bindErr *sockets.BindError
		if errors.As(err, &bindErr) {
			p.startReason = ReasonSocketBindFailed
		}
		r.opts.Events.Eventf(v1alpha1.KindProcess, p.name, events.TypeWarning, p.startReason, "%s", err.Error())
		p.lastExit = &v1alpha1.ExitInfo{ExitCode: -1, Reason: p.startReason, FinishedAt: metav1.NewTime(now)}
		p.scheduleRestart(pr, now, now)
		return max(p.nextStartAt.Sub(now), time.Millisecond)
	}
	return r.superviseRunning(log, p, pr, now)
}

// handleExit records a run that ended and decides what comes next.
func (r *Reconciler) handleExit(log logr.Logger, p *proc, pr *v1alpha1.Process, now time.Time) {
	st := *p.pendingExit
	p.pendingExit = nil
	p.running = false
	r.up.WithLabelValues(p.name).Set(0)
	p.closeNotify()
	r.dropRecord(p.name)
	// Whatever the program left in its group goes with it (like systemd's
	// control-group kill), so a restart never runs beside a leftover.
	if supervise.GroupAlive(p.pgid) {
		supervise.SignalGroup(p.pgid, 9)
	}
	info := &v1alpha1.ExitInfo{ExitCode: st.ExitCode, Signal: supervise.SignalName(st.Signal), FinishedAt: metav1.NewTime(st.At), Reason: p.stopReason}
	if !st.Known {
		info.ExitCode = -1
		if info.Reason == "" {
			info.Reason = "Unknown"
		}
	}
	p.lastExit = info
	p.ready = false
	if !p.stopping {
		if st.Known && st.Signal == 0 && st.ExitCode == 0 {
			r.opts.Events.Eventf(v1alpha1.KindProcess, p.name, events.TypeNormal, ReasonCompleted, "exited with status 0")
		} else {
			r.opts.Events.Eventf(v1alpha1.KindProcess, p.name, events.TypeWarning, "Exited", "%s", exitMessage(info))
		}
	}
	log.V(1).Info("program exited", "pid", p.pid, "status", st.String(), "reason", p.stopReason)
	stopped := p.stopping
	p.stopping = false
	p.stopReason = ""
	if stopped && p.restartAfterStop {
		p.restartAfterStop = false
		p.nextStartAt = now
		return
	}
	success := st.Known && st.Signal == 0 && st.ExitCode == 0
	switch pr.Spec.RestartPolicy {
	case v1alpha1.RestartNever:
		p.done = true
	case v1alpha1.RestartOnFailure:
		p.done = success
	}
	if p.done {
		p.succeeded = success
		return
	}
	p.scheduleRestart(pr, p.startedAt, st.At)
}

// scheduleRestart sets the next start: at once after the first crash of a
// streak, then after a jittered exponential delay.
func (p *proc) scheduleRestart(pr *v1alpha1.Process, startedAt, exitAt time.Time) {
	b := pr.Spec.Backoff
	if !startedAt.IsZero() && exitAt.Sub(startedAt) >= b.ResetAfter.Duration {
		p.streak = 0
	}
	// Jitter 0.9-1.1x so programs that crashed together do not restart
	// in lockstep. (Validation keeps initial and max at MinBackoff or
	// more.)
	delay := backoff.Policy{Initial: max(b.Initial.Duration, v1alpha1.MinBackoff), Max: max(b.Max.Duration, v1alpha1.MinBackoff), Jitter: 0.1}.Delay(p.streak)
	p.streak++
	p.nextStartAt = exitAt.Add(delay)
}

// reconcileDeleted stops a program whose resource is gone and cleans up
// what it owned.
func (r *Reconciler) reconcileDeleted(log logr.Logger, p *proc, now time.Time) reconcile.Result {
	if p.pendingExit != nil {
		st := *p.pendingExit
		p.pendingExit = nil
		p.running = false
		p.closeNotify()
		if supervise.GroupAlive(p.pgid) {
			supervise.SignalGroup(p.pgid, 9)
		}
		log.V(1).Info("program of deleted resource exited", "status", st.String())
	}
	if p.running {
		if !p.stopping {
			log.Info("stopping program of deleted resource", "pid", p.pid)
			return reconcile.Result{RequeueAfter: r.beginStop(log, p, ReasonDeleted, now)}
		}
		return reconcile.Result{RequeueAfter: r.continueStop(log, p, now)}
	}
	p.closeNotify()
	r.closeSockets(p, true)
	r.dropRecord(p.name)
	r.files.set(p.name, nil)
	r.logGuard.Forget(p.name)
	if err := r.logs.Remove(logKind, p.name); err != nil {
		log.Error(err, "cannot remove logs")
	}
	r.restartsTotal.DeleteLabelValues(p.name)
	r.up.DeleteLabelValues(p.name)
	p.deleted = true
	r.mu.Lock()
	if r.procs[p.name] == p {
		delete(r.procs, p.name)
	}
	r.mu.Unlock()
	return reconcile.Result{}
}

// writeStatus publishes the program's state to the store.
func (r *Reconciler) writeStatus(log logr.Logger, p *proc, pr *v1alpha1.Process) {
	st := p.status(pr)
	update := r.store.UpdateStatus
	if st.Phase == v1alpha1.ProcessStopping {
		update = func(kind, name string, status any) error {
			return r.store.UpdateTransientStatus(kind, name, status, controllers.TransientSettle)
		}
	}
	if err := update(v1alpha1.KindProcess, p.name, st); err != nil {
		log.V(1).Info("status not updated", "error", err.Error())
	}
}
