// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package link is the Link controller: every Link is probed on one shared
// schedule (internal/schedule, internal/probe) and moves between Up,
// Degraded and Down with hysteresis; a recent window of probes is kept for
// the API's live view, and the latency and failures rolled up from an hour
// to a year (package history), as for Checks.
package link

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
	"github.com/reconciled/reconciled/internal/probe"
	"github.com/reconciled/reconciled/internal/schedule"
	"github.com/reconciled/reconciled/reconcile"
)

// Link condition reasons and event reasons.
const (
	ReasonLinkUp       = "LinkUp"
	ReasonLinkDown     = "LinkDown"
	ReasonLinkDegraded = "LinkDegraded"
	ReasonProbing      = "Probing"
)

// Options configures a Reconciler.
type Options struct {
	Store  controllers.ResourceStore
	Events events.Recorder
	Log    logr.Logger
	// Registerer receives the link metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Concurrency bounds probes in flight (default 256).
	Concurrency int
	// History is how many recent results are kept per Link (default 20).
	History int
	// HistoryDir holds one rolled-up history of latency and failures per
	// Link (package history, as for Checks); "" keeps none.
	HistoryDir string
}

// Reconciler probes Links on one shared schedule and keeps their
// phase with hysteresis. Probe results live in memory (API, describe,
// metrics); the file's status changes only on transitions.
type Reconciler struct {
	opts   Options
	log    logr.Logger
	store  controllers.ResourceStore
	prober *probe.Prober
	sched  *schedule.Scheduler
	rec    events.Recorder
	ctrl   *reconcile.Controller

	up          *prometheus.GaugeVec
	latency     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lateness    prometheus.Histogram

	mu    sync.Mutex
	links map[string]*linkState
}

// linkState is what the controller knows about one Link; guarded by mu.
type linkState struct {
	mu          sync.Mutex
	phase       string
	since       time.Time
	transitions int64
	lastError   string // at the last transition to Down; cleared when it is up again
	slowBy      string // at the last transition to Degraded: "412ms, slower than degradedLatency 250ms"
	failures    int    // consecutive
	successes   int    // consecutive, of candidate's class
	candidate   string // Up or Degraded: what the current success run points to
	history     []probe.Result
	series      *history.Series // latency and failures, rolled up; nil without HistoryDir
	next        int             // ring position
	filled      bool
	initialized bool
}

// NewReconciler returns a Link controller; call SetupWithEngine and
// run Start.
func NewReconciler(o Options) *Reconciler {
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.History <= 0 {
		o.History = 20
	}
	if o.Events == nil {
		o.Events = controllers.DiscardRecorder{}
	}
	r := &Reconciler{
		opts: o, log: o.Log, store: o.Store, prober: probe.NewProber(), rec: o.Events,
		links: map[string]*linkState{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_link_up", Help: "1 when the Link is Up or Degraded, 0 when Down; absent until known.",
		}, []string{"name"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_link_latency_seconds", Help: "Latency of the Link's last successful probe.",
		}, []string{"name"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciled_link_transitions_total", Help: "Phase changes of the Link (Up, Degraded, Down).",
		}, []string{"name"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reconciled_link_probe_duration_seconds", Help: "Duration of Link probes by result.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reconciled_link_probe_lateness_seconds", Help: "How late probes start against their schedule (scheduling jitter).",
			Buckets: []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 1},
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.up, r.latency, r.transitions, r.duration, r.lateness)
	}
	r.sched = schedule.New(o.Concurrency, r.probeOnce)
	r.sched.OnLateness(func(d time.Duration) { r.lateness.Observe(d.Seconds()) })
	return r
}

// SetupWithEngine registers the controller and subscribes to store changes.
func (r *Reconciler) SetupWithEngine(e *reconcile.Engine) error {
	c, err := controllers.WatchKind(e, r.store, v1alpha1.KindLink, r, reconcile.ControllerOptions{MaxConcurrentReconciles: 2})
	r.ctrl = c
	return err
}

// Start runs the probe scheduler until ctx is done, then folds every
// history's log into its snapshot.
func (r *Reconciler) Start(ctx context.Context) error {
	r.sched.Start(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.links {
		if st.series != nil {
			if err := st.series.Close(); err != nil {
				r.log.Error(err, "closing a link history")
			}
		}
	}
	return nil
}

// History returns a Link's latency (seconds) and failures over the named
// range, ending now.
func (r *Reconciler) History(name, rangeName string) ([]history.Point, error) {
	st := r.state(name, false)
	if st == nil {
		return nil, fmt.Errorf("link %s not found", name)
	}
	if st.series == nil {
		return []history.Point{}, nil
	}
	return st.series.Points(rangeName, time.Now())
}

// state returns the state of name, creating it when create is set.
func (r *Reconciler) state(name string, create bool) *linkState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.links[name]
	if st == nil && create {
		st = &linkState{phase: v1alpha1.LinkUnknown}
		r.transitions.WithLabelValues(name) // from 0, so increase() counts the first transition
		if r.opts.HistoryDir != "" {
			st.series = controllers.OpenHistory(r.opts.HistoryDir, v1alpha1.KindLink, name, r.log, r.rec)
		}
		r.links[name] = st
	}
	return st
}

// Reconcile implements reconcile.Reconciler: it keeps the Link on the
// schedule and publishes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj, ok := r.store.Get(v1alpha1.KindLink, req.Name)
	if !ok {
		r.sched.Remove(req.Name)
		r.mu.Lock()
		if st := r.links[req.Name]; st != nil && st.series != nil {
			if err := st.series.Remove(); err != nil {
				r.log.Error(err, "removing the history of a deleted link", "name", req.Name)
			}
		}
		delete(r.links, req.Name)
		r.mu.Unlock()
		r.up.DeleteLabelValues(req.Name)
		r.latency.DeleteLabelValues(req.Name)
		r.transitions.DeleteLabelValues(req.Name)
		return reconcile.Result{}, nil
	}
	l := obj.(*v1alpha1.Link)
	st := r.state(req.Name, true)
	st.mu.Lock()
	if !st.initialized {
		// Continue from the status in the file: a daemon restart is not a
		// transition.
		st.initialized = true
		if l.Status.Phase != "" {
			st.phase = l.Status.Phase
			st.transitions = l.Status.Transitions
			st.lastError = l.Status.LastError
			if l.Status.Since != nil {
				st.since = l.Status.Since.Time
			}
		}
	}
	status := st.status(l)
	phase := st.phase
	st.mu.Unlock()
	switch phase { // also after a restart, when no transition sets it
	case v1alpha1.LinkUp, v1alpha1.LinkDegraded:
		r.up.WithLabelValues(req.Name).Set(1)
	case v1alpha1.LinkDown:
		r.up.WithLabelValues(req.Name).Set(0)
	}
	r.sched.Set(req.Name, l.Spec.Interval.Duration)
	if err := r.store.UpdateStatus(v1alpha1.KindLink, req.Name, status); err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("status not updated", "error", err.Error())
	}
	return reconcile.Result{}, nil
}

// status renders the Link status (only transition data).
func (st *linkState) status(l *v1alpha1.Link) v1alpha1.LinkStatus {
	s := v1alpha1.LinkStatus{CommonStatus: controllers.StatusFor(l), Transitions: st.transitions, LastError: st.lastError}
	s.Phase = st.phase
	if !st.since.IsZero() {
		t := metav1.NewTime(st.since)
		s.Since = &t
	}
	c := v1alpha1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: l.Generation}
	switch st.phase {
	case v1alpha1.LinkUp:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonLinkUp
	case v1alpha1.LinkDegraded:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonLinkDegraded, st.slowBy
	case v1alpha1.LinkDown:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonLinkDown, st.lastError
	default:
		c.Status, c.Reason = metav1.ConditionUnknown, ReasonProbing
	}
	s.SetCondition(c)
	return s
}

// probeOnce is the scheduler's job for one Link.
func (r *Reconciler) probeOnce(name string) {
	obj, ok := r.store.Get(v1alpha1.KindLink, name)
	if !ok {
		return
	}
	l := obj.(*v1alpha1.Link)
	res := r.prober.Probe(context.Background(), &l.Spec, l.Spec.Timeout.Duration)
	r.observe(name, l, res)
}

// observe applies one probe result with hysteresis; a phase change is
// published through a reconcile.
func (r *Reconciler) observe(name string, l *v1alpha1.Link, res probe.Result) {
	result := "success"
	if !res.OK {
		result = "failure"
	}
	r.duration.WithLabelValues(result).Observe(res.Latency.Seconds())
	st := r.state(name, false)
	if st == nil {
		return
	}
	st.mu.Lock()
	st.record(res, r.opts.History)
	if st.series != nil {
		st.series.Add(res.At, res.Latency.Seconds(), res.OK)
	}
	from := st.phase
	to := st.next1(l, res)
	changed := to != "" && to != from
	if changed {
		st.phase = to
		st.since = res.At.Add(res.Latency)
		if from != v1alpha1.LinkUnknown {
			st.transitions++
		}
		switch to {
		case v1alpha1.LinkDown:
			st.lastError = describeFailure(res, st.failures)
		case v1alpha1.LinkDegraded:
			st.slowBy = fmt.Sprintf("probe took %s, slower than degradedLatency %s", res.Latency.Round(time.Millisecond), l.Spec.DegradedLatency.Duration)
			st.lastError = ""
		default:
			// Up again: the error is history (in the events), not status.
			st.lastError = ""
		}
	}
	lastError, slowBy := st.lastError, st.slowBy
	st.mu.Unlock()
	if res.OK {
		r.latency.WithLabelValues(name).Set(res.Latency.Seconds())
	}
	if !changed {
		return
	}
	if to == v1alpha1.LinkDown {
		r.up.WithLabelValues(name).Set(0)
	} else {
		r.up.WithLabelValues(name).Set(1)
	}
	if from != v1alpha1.LinkUnknown {
		r.transitions.WithLabelValues(name).Inc()
	}
	// Events of one reason whose messages differ (latencies) are combined
	// by the event store ("x5 over 1h").
	switch {
	case from == v1alpha1.LinkUnknown && to != v1alpha1.LinkDown:
		// first observation after start: not news
	case to == v1alpha1.LinkDown:
		r.rec.Eventf(v1alpha1.KindLink, name, events.TypeWarning, ReasonLinkDown, "%s", lastError)
	case to == v1alpha1.LinkDegraded:
		r.rec.Eventf(v1alpha1.KindLink, name, events.TypeWarning, ReasonLinkDegraded, "%s", slowBy)
	case to == v1alpha1.LinkUp:
		r.rec.Eventf(v1alpha1.KindLink, name, events.TypeNormal, ReasonLinkUp, "up again (was %s)", from)
	}
	r.log.Info("link changed phase", "name", name, "from", from, "to", to)
	if r.ctrl != nil {
		r.ctrl.Enqueue(name)
	}
}

// next1 applies one result to the counters and returns the phase it calls
// for, or "" when no change is due yet (hysteresis).
func (st *linkState) next1(l *v1alpha1.Link, res probe.Result) string {
	if !res.OK {
		st.successes, st.candidate = 0, ""
		st.failures++
		if st.failures >= int(l.Spec.FailureThreshold) {
			return v1alpha1.LinkDown
		}
		return ""
	}
	st.failures = 0
	class := v1alpha1.LinkUp
	if d := l.Spec.DegradedLatency; d != nil && res.Latency > d.Duration {
		class = v1alpha1.LinkDegraded
	}
	if class == st.candidate {
		st.successes++
	} else {
		st.candidate, st.successes = class, 1
	}
	if st.successes >= int(l.Spec.SuccessThreshold) {
		return class
	}
	return ""
}

func (st *linkState) record(res probe.Result, n int) {
	if len(st.history) < n {
		st.history = append(st.history, res)
		return
	}
	st.history[st.next] = res
	st.next = (st.next + 1) % n
	st.filled = true
}

func describeFailure(res probe.Result, n int) string {
	msg := res.Reason
	if res.Message != "" {
		msg += ": " + res.Message
	}
	return fmt.Sprintf("%s (%d consecutive failures)", msg, n)
}

// Live is the fast-changing view of a Link: served by the API and
// shown by describe, never written to files.
type Live struct {
	Phase               string        `json:"phase"`
	ConsecutiveFailures int           `json:"consecutiveFailures"`
	LastProbe           *ProbeRecord  `json:"lastProbe,omitempty"`
	History             []ProbeRecord `json:"history"`
}

// ProbeRecord is one probe result.
type ProbeRecord struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Latency string    `json:"latency"`
	Seconds float64   `json:"seconds"`
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Live returns the recent probe results of a Link, oldest first.
func (r *Reconciler) Live(name string) (Live, bool) {
	st := r.state(name, false)
	if st == nil {
		return Live{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	out := Live{Phase: st.phase, ConsecutiveFailures: st.failures, History: []ProbeRecord{}}
	ordered := st.history
	if st.filled {
		ordered = append(append([]probe.Result(nil), st.history[st.next:]...), st.history[:st.next]...)
	}
	for _, res := range ordered {
		out.History = append(out.History, ProbeRecord{At: res.At, OK: res.OK, Latency: res.Latency.Round(time.Microsecond).String(),
			Seconds: res.Latency.Seconds(), Reason: res.Reason, Message: res.Message})
	}
	if n := len(out.History); n > 0 {
		last := out.History[n-1]
		out.LastProbe = &last
	}
	return out, true
}
