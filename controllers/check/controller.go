// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package check is the Check controller: every Check is measured on one
// shared schedule (internal/schedule, internal/measure), its value mapped
// to a fitness level with hysteresis (spec.for), and kept in its rolled-up
// history (history). The store's (and the file's) status changes with the
// level; the value of every evaluation is laid over it when served
// (Overlay).
package check

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/history"
	"github.com/reconciled/reconciled/internal/measure"
	"github.com/reconciled/reconciled/internal/schedule"
	"github.com/reconciled/reconciled/reconcile"
)

// Condition and event reasons.
const (
	// ReasonLevelChanged is the event of every level change.
	ReasonLevelChanged = "LevelChanged"
	// ReasonEvaluated: the Ready condition of a Check with a value.
	ReasonEvaluated = "Evaluated"
	// ReasonEvaluationFailed: the value could not be had (level Unknown).
	ReasonEvaluationFailed = "EvaluationFailed"
	// ReasonPending: not evaluated yet.
	ReasonPending = "Pending"
)

// Options configures a Reconciler.
type Options struct {
	Store  controllers.ResourceStore
	Events events.Recorder
	Log    logr.Logger
	// Registerer receives the check metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// HistoryDir holds one history per Check; "" keeps none.
	HistoryDir string
	// Measurer gets the values (default measure.New with the Process
	// resources' pids from Store).
	Measurer *measure.Measurer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Concurrency bounds evaluations in flight (default 64).
	Concurrency int
}

// Reconciler evaluates Checks.
type Reconciler struct {
	o     Options
	store controllers.ResourceStore
	rec   events.Recorder
	sched *schedule.Scheduler
	ctrl  *reconcile.Controller

	value *prometheus.GaugeVec
	level *prometheus.GaugeVec

	mu     sync.Mutex
	checks map[string]*checkState
	// first counts the evaluations Reconcile started out of schedule.
	first sync.WaitGroup
}

// checkState is what the controller knows about one Check.
type checkState struct {
	mu          sync.Mutex
	initialized bool
	generation  int64
	level       string // taken; "" before the first
	previous    string
	since       time.Time
	why         string // of the level: "91.3 above 90", or the error
	candidate   string // the level the recent evaluations call for
	count       int    // evaluations in a row calling for candidate
	value       *float64
	evaluated   time.Time
	err         string // of the last evaluation
	series      *history.Series
	metricLevel string // the level label of its reconciled_check_level series
}

// NewReconciler returns a Check controller; call SetupWithEngine and run
// Start.
func NewReconciler(o Options) *Reconciler {
	if o.Events == nil {
		o.Events = controllers.DiscardRecorder{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Measurer == nil {
		o.Measurer = measure.New(measure.Options{ProcessPID: func(name string) int {
			if obj, ok := o.Store.Get(v1alpha1.KindProcess, name); ok {
				return obj.(*v1alpha1.Process).Status.Pid
			}
			return 0
		}})
	}
	r := &Reconciler{o: o, store: o.Store, rec: o.Events, checks: map[string]*checkState{},
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_check_value", Help: "The Check's last measured value; absent while it cannot be had.",
		}, []string{"name"}),
		level: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_check_level", Help: "The Check's level as its rank among its levels (0 = best); -1 while Unknown.",
		}, []string{"name", "level"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.value, r.level)
	}
	r.sched = schedule.New(o.Concurrency, func(name string) { r.evaluate(name) })
	return r
}

// SetupWithEngine registers the controller and subscribes to store changes.
func (r *Reconciler) SetupWithEngine(e *reconcile.Engine) error {
	c, err := controllers.WatchKind(e, r.store, v1alpha1.KindCheck, r, reconcile.ControllerOptions{MaxConcurrentReconciles: 2})
	r.ctrl = c
	return err
}

// Start runs the schedule until ctx is done, then folds every history's
// log into its snapshot.
func (r *Reconciler) Start(ctx context.Context) error {
	r.sched.Start(ctx)
	r.first.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.checks {
		if st.series != nil {
			if err := st.series.Close(); err != nil {
				r.o.Log.Error(err, "closing a check history")
			}
		}
	}
	return nil
}

func (r *Reconciler) state(name string, create bool) *checkState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.checks[name]
	if st == nil && create {
		st = &checkState{}
		r.checks[name] = st
	}
	return st
}

// Reconcile implements reconcile.Reconciler: it keeps the Check on the
// schedule (evaluating it at once when new or changed) and publishes its
// status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj, ok := r.store.Get(v1alpha1.KindCheck, req.Name)
	if !ok {
		r.sched.Remove(req.Name)
		r.mu.Lock()
		st := r.checks[req.Name]
		delete(r.checks, req.Name)
		r.mu.Unlock()
		if st != nil && st.series != nil {
			if err := st.series.Remove(); err != nil {
				r.o.Log.Error(err, "removing the history of a deleted check", "name", req.Name)
			}
		}
		r.value.DeleteLabelValues(req.Name)
		r.level.DeletePartialMatch(prometheus.Labels{"name": req.Name})
		return reconcile.Result{}, nil
	}
	c := obj.(*v1alpha1.Check)
	st := r.state(req.Name, true)
	st.mu.Lock()
	if !st.initialized {
		st.initialized = true
		// Continue from the status in the file: a restart is no level
		// change.
		st.level, st.previous, st.value = c.Status.Level, c.Status.PreviousLevel, c.Status.Value
		if c.Status.Since != nil {
			st.since = c.Status.Since.Time
		}
		if r.o.HistoryDir != "" {
			st.series = controllers.OpenHistory(r.o.HistoryDir, v1alpha1.KindCheck, req.Name, r.o.Log, r.rec)
		}

	}
	changed := st.generation != c.Generation
	st.generation = c.Generation
	// Statuses are published under st.mu: an evaluation's status never
	// overtakes (or is overwritten by) an older one.
	if err := r.store.UpdateStatus(v1alpha1.KindCheck, req.Name, st.status(c)); err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("status not updated", "error", err.Error())
	}
	st.mu.Unlock()
	r.sched.Set(req.Name, c.Spec.Interval.Duration)
	if changed { // new or changed: no waiting for the schedule
		r.first.Add(1)
		go func() {
			defer r.first.Done()
			r.evaluate(req.Name)
		}()
	}
	return reconcile.Result{}, nil
}

// status renders the Check's status.
func (st *checkState) status(c *v1alpha1.Check) v1alpha1.CheckStatus {
	s := v1alpha1.CheckStatus{CommonStatus: controllers.StatusFor(c), Level: st.level, PreviousLevel: st.previous, Value: st.value}
	s.Phase = st.level
	if !st.since.IsZero() {
		t := metav1.NewTime(st.since)
		s.Since = &t
	}
	if !st.evaluated.IsZero() {
		t := metav1.NewTime(st.evaluated)
		s.LastEvaluated = &t
	}
	cond := v1alpha1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: c.Generation}
	switch {
	case st.level == "":
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, ReasonPending, "not evaluated yet"
	case st.level == v1alpha1.CheckUnknown:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonEvaluationFailed, st.why
	default:
		// Ready means "evaluated"; how fit it is, is the level.
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, ReasonEvaluated, st.level+": "+st.why
	}
	s.SetCondition(cond)
	return s
}

// evaluate measures one Check, applies its level rules with hysteresis,
// records the value in its history and publishes what changed.
func (r *Reconciler) evaluate(name string) {
	obj, ok := r.store.Get(v1alpha1.KindCheck, name)
	st := r.state(name, false)
	if !ok || st == nil {
		return
	}
	c := obj.(*v1alpha1.Check)
	v, err := r.o.Measurer.Measure(context.Background(), &c.Spec)
	now := r.o.Now()

	want, why := v1alpha1.CheckUnknown, ""
	if err != nil {
		why = err.Error()
	} else {
		want, why = c.Spec.LevelOf(v)
	}
	st.mu.Lock()
	if st.series != nil {
		st.series.Add(now, v, err == nil)
	}
	st.evaluated = now
	if err != nil {
		st.value, st.err = nil, why
	} else {
		st.value, st.err = &v, ""
	}
	from := st.level
	taken := st.step(want, int(c.Spec.For))
	if taken {
		// The reason stays that of the change (the value is beside it):
		// an alert's message changes with the level, not every minute.
		st.previous, st.level, st.since, st.why = from, want, now, why
	}
	if st.level != "" && st.level != st.metricLevel {
		// One series per Check, labelled with its level: replaced when the
		// level changes (a partial-match delete would scan every Check's).
		if st.metricLevel != "" {
			r.level.DeleteLabelValues(name, st.metricLevel)
		}
		r.level.WithLabelValues(name, st.level).Set(float64(c.Spec.Rank(st.level)))
		st.metricLevel = st.level
	}
	// The store (and the file) hears of a level change only: the value of
	// every evaluation is laid over the status when it is served
	// (Overlay), as a Link's probes are. A status write per evaluation was
	// most of the cost of 1,000 Checks.
	var uerr error
	if taken {
		uerr = r.store.UpdateStatus(v1alpha1.KindCheck, name, st.status(c))
	}
	st.mu.Unlock()
	if uerr != nil {
		r.o.Log.V(1).Info("status not updated", "name", name, "error", uerr.Error())
	}

	if err == nil {
		r.value.WithLabelValues(name).Set(v)
	} else {
		r.value.DeleteLabelValues(name)
	}
	if !taken {
		return
	}
	r.o.Log.Info("check changed level", "name", name, "from", from, "to", want, "why", why)
	if from == "" && c.Spec.Rank(want) == 0 {
		return // the first evaluation found it fine: not news
	}
	// Worse is a Warning: Unknown, or a level not the best that is below
	// the one before (or follows Unknown); better is Normal.
	typ := events.TypeNormal
	if rank, old := c.Spec.Rank(want), c.Spec.Rank(from); rank < 0 || rank > 0 && (old < 0 || rank > old) {
		typ = events.TypeWarning
	}
	fromName := from
	if fromName == "" {
		fromName = "(new)"
	}
	r.rec.Eventf(v1alpha1.KindCheck, name, typ, ReasonLevelChanged, "%s -> %s: %s", fromName, want, why)
}

// step applies one evaluation calling for want with hysteresis n: it
// reports whether want is taken now. The first level is taken at once.
func (st *checkState) step(want string, n int) bool {
	if want == st.level {
		st.candidate, st.count = "", 0
		return false
	}
	if want == st.candidate {
		st.count++
	} else {
		st.candidate, st.count = want, 1
	}
	if st.level == "" || st.count >= n {
		st.candidate, st.count = "", 0
		return true
	}
	return false
}

// Overlay returns o with the value and time of its last evaluation when o
// is a Check this controller evaluated since its status was written (the
// API, the pages and the fleet view serve objects through it); anything
// else unchanged.
func (r *Reconciler) Overlay(o v1alpha1.Object) v1alpha1.Object {
	c, ok := o.(*v1alpha1.Check)
	if !ok {
		return o
	}
	st := r.state(c.Name, false)
	if st == nil {
		return o
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.evaluated.IsZero() || c.Status.LastEvaluated != nil && !st.evaluated.After(c.Status.LastEvaluated.Time) {
		return o
	}
	cc := *c
	cc.Status.Value = st.value
	t := metav1.NewTime(st.evaluated)
	cc.Status.LastEvaluated = &t
	return &cc
}

// Live is what the API serves beside the status: the value of the last
// evaluation, and the level the last evaluations call for while the
// hysteresis holds it back.
type Live struct {
	Level     string    `json:"level"`
	Value     *float64  `json:"value,omitempty"`
	Evaluated time.Time `json:"evaluated,omitempty"`
	Error     string    `json:"error,omitempty"`
	Pending   string    `json:"pending,omitempty"`
	PendingN  int       `json:"pendingEvaluations,omitempty"`
}

// Live returns a Check's live view.
func (r *Reconciler) Live(name string) (Live, bool) {
	st := r.state(name, false)
	if st == nil {
		return Live{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return Live{Level: st.level, Value: st.value, Evaluated: st.evaluated, Error: st.err, Pending: st.candidate, PendingN: st.count}, true
}

// History returns a Check's history over the named range, ending now.
func (r *Reconciler) History(name, rangeName string) ([]history.Point, error) {
	st := r.state(name, false)
	if st == nil {
		return nil, fmt.Errorf("check %s: %w", name, errNotFound)
	}
	st.mu.Lock()
	s := st.series
	st.mu.Unlock()
	if s == nil {
		return []history.Point{}, nil
	}
	return s.Points(rangeName, r.o.Now())
}

var errNotFound = fmt.Errorf("not found")
