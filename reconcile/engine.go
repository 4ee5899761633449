// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package reconcile

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// Results as counted in reconciled_reconcile_total{result}.
const (
	ResultSuccess = "success"
	ResultRequeue = "requeue"
	ResultError   = "error"
	ResultPanic   = "panic"
)

// Engine runs the controllers of every kind.
type Engine struct {
	log         logr.Logger
	metrics     *metrics
	mu          sync.Mutex
	controllers []runner
	started     bool
	reconcileID atomic.Uint64
}

// runner is what the engine needs of a controller whatever its key type.
type runner interface {
	name() string
	workers() int
	processNext(ctx context.Context) bool
	shutDown()
	Len() int
	stuck(now time.Time, limit time.Duration) []string
}

// Options configures an Engine.
type Options struct {
	// Log is the base logger; each reconcile gets kind, name and reconcileID.
	Log logr.Logger
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// TypedControllerOptions configures one controller.
type TypedControllerOptions[K comparable] struct {
	// MaxConcurrentReconciles is the number of workers (default 2).
	MaxConcurrentReconciles int
	// RateLimiter decides error backoff; default: per-item exponential
	// 5ms..1000s combined with a 10 qps / 100 burst token bucket.
	RateLimiter workqueue.TypedRateLimiter[K]
}

// ControllerOptions configures one kind's controller.
type ControllerOptions = TypedControllerOptions[Request]

// TypedController is one controller's queue and workers, for keys of
// type K.
type TypedController[K comparable] struct {
	kind  string
	r     TypedReconciler[K]
	opts  TypedControllerOptions[K]
	queue workqueue.TypedRateLimitingInterface[K]
	e     *Engine

	mu      sync.Mutex
	running map[K]time.Time // reconciles in progress, since when
}

// Controller is one kind's queue and workers, keyed by name.
type Controller struct{ *TypedController[Request] }

type metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// depthCollector reports reconciled_workqueue_depth{kind} from the queues
// at scrape time, so it is exact whichever way items were added.
type depthCollector struct {
	e    *Engine
	desc *prometheus.Desc
}

func (d depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d depthCollector) Collect(ch chan<- prometheus.Metric) {
	d.e.mu.Lock()
	defer d.e.mu.Unlock()
	for _, c := range d.e.controllers {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(c.Len()), c.name())
	}
}

// NewEngine returns an engine with no controllers.
func NewEngine(opts Options) *Engine {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciled_reconcile_total", Help: "Reconciles by kind and result (success, requeue, error, panic).",
		}, []string{"kind", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reconciled_reconcile_duration_seconds", Help: "Time spent in one reconcile, by kind.",
			Buckets: []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
		}, []string{"kind"}),
	}
	e := &Engine{log: opts.Log, metrics: m}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.total, m.duration, depthCollector{e: e, desc: prometheus.NewDesc(
			"reconciled_workqueue_depth", "Objects waiting in the work queue, by kind.", []string{"kind"}, nil)})
	}
	return e
}

// Register adds a controller for kind. It must be called before Start.
func (e *Engine) Register(kind string, r Reconciler, opts ControllerOptions) (*Controller, error) {
	c, err := Register(e, kind, r, opts)
	if err != nil {
		return nil, err
	}
	return &Controller{c}, nil
}

// Register adds a controller named name (the kind label of its metrics and
// logs) with keys of type K to e. It must be called before e.Start.
func Register[K comparable](e *Engine, name string, r TypedReconciler[K], opts TypedControllerOptions[K]) (*TypedController[K], error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return nil, fmt.Errorf("register %s: engine already started", name)
	}
	for _, c := range e.controllers {
		if c.name() == name {
			return nil, fmt.Errorf("register %s: already registered", name)
		}
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 2
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.DefaultTypedControllerRateLimiter[K]()
	}
	c := &TypedController[K]{
		kind: name, r: r, opts: opts, e: e, running: map[K]time.Time{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter, workqueue.TypedRateLimitingQueueConfig[K]{Name: name}),
	}
	e.controllers = append(e.controllers, c)
	for _, res := range []string{ResultSuccess, ResultRequeue, ResultError, ResultPanic} {
		e.metrics.total.WithLabelValues(name, res)
	}
	return c, nil
}

// Start runs every controller's workers and blocks until ctx is done; then
// it shuts the queues down and waits for running reconciles to return.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	e.started = true
	ctrls := append([]runner(nil), e.controllers...)
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range ctrls {
		for i := 0; i < c.workers(); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c.processNext(ctx) {
				}
			}()
		}
	}
	<-ctx.Done()
	for _, c := range ctrls {
		c.shutDown()
	}
	wg.Wait()
	return nil
}

// Stuck returns an error naming every reconcile that has been running for
// longer than limit, or nil: a worker that never returns (a hung system
// call, a deadlock) stops its kind from converging, which a liveness check
// must see even though the process still answers.
func (e *Engine) Stuck(limit time.Duration) error {
	e.mu.Lock()
	ctrls := append([]runner(nil), e.controllers...)
	e.mu.Unlock()
	now := time.Now()
	var stuck []string
	for _, c := range ctrls {
		stuck = append(stuck, c.stuck(now, limit)...)
	}
	if len(stuck) == 0 {
		return nil
	}
	sort.Strings(stuck)
	return errors.New(strings.Join(stuck, "; "))
}

// Kind returns the controller's kind (its name).
func (c *TypedController[K]) Kind() string { return c.kind }

func (c *TypedController[K]) name() string { return c.kind }
func (c *TypedController[K]) workers() int { return c.opts.MaxConcurrentReconciles }
func (c *TypedController[K]) shutDown()    { c.queue.ShutDownWithDrain() }

// stuck describes the reconciles running for longer than limit.
func (c *TypedController[K]) stuck(now time.Time, limit time.Duration) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for key, since := range c.running {
		if d := now.Sub(since); d > limit {
			out = append(out, fmt.Sprintf("%s/%s: reconcile running for %s", c.kind, keyString(key), d.Round(time.Second)))
		}
	}
	return out
}

// keyString renders a key for logs: its String method, or fmt's %v.
func keyString[K comparable](key K) string {
	if s, ok := any(key).(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(key)
}

// Add schedules a reconcile of key. Adding a key that is already waiting
// does nothing; adding one being reconciled runs it once more after.
func (c *TypedController[K]) Add(key K) { c.queue.Add(key) }

// AddAfter schedules a reconcile of key after d.
func (c *TypedController[K]) AddAfter(key K, d time.Duration) { c.queue.AddAfter(key, d) }

// Enqueue schedules a reconcile of name (see Add).
func (c *Controller) Enqueue(name string) { c.Add(Request{Name: name}) }

// EnqueueAfter schedules a reconcile of name after d.
func (c *Controller) EnqueueAfter(name string, d time.Duration) { c.AddAfter(Request{Name: name}, d) }

// Len returns the number of objects waiting.
func (c *TypedController[K]) Len() int { return c.queue.Len() }

func (c *TypedController[K]) processNext(ctx context.Context) bool {
	req, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(req)
	if ctx.Err() != nil {
		// Shutting down: a shut-down queue still hands out the objects
		// that were waiting. Don't start them with a cancelled context;
		// reconciles are level-based, the next start picks them up.
		return false
	}
	id := c.e.reconcileID.Add(1)
	log := c.e.log.WithValues("kind", c.kind, "name", keyString(req), "reconcileID", strconv.FormatUint(id, 10))
	start := time.Now()
	c.mu.Lock()
	c.running[req] = start
	c.mu.Unlock()
	res, err := c.reconcile(logr.NewContext(ctx, log), req)
	c.mu.Lock()
	delete(c.running, req)
	c.mu.Unlock()
	c.e.metrics.duration.WithLabelValues(c.kind).Observe(time.Since(start).Seconds())
	switch {
	case err != nil && IsTerminal(err):
		c.e.metrics.total.WithLabelValues(c.kind, ResultError).Inc()
		log.Error(err, "reconcile failed; not retrying until the object changes")
		c.queue.Forget(req)
	case err != nil:
		result := ResultError
		if _, ok := err.(*panicError); ok {
			result = ResultPanic
		}
		c.e.metrics.total.WithLabelValues(c.kind, result).Inc()
		log.Error(err, "reconcile failed; retrying with backoff")
		c.queue.AddRateLimited(req)
	case res.RequeueAfter > 0:
		c.e.metrics.total.WithLabelValues(c.kind, ResultRequeue).Inc()
		c.queue.Forget(req)
		c.queue.AddAfter(req, res.RequeueAfter)
	default:
		c.e.metrics.total.WithLabelValues(c.kind, ResultSuccess).Inc()
		c.queue.Forget(req)
	}
	return true
}

type panicError struct{ msg string }

func (p *panicError) Error() string { return p.msg }

// reconcile calls the reconciler, turning a panic into an error.
func (c *TypedController[K]) reconcile(ctx context.Context, req K) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{msg: fmt.Sprintf("panic in reconcile: %v\n%s", r, debug.Stack())}
		}
	}()
	return c.r.Reconcile(ctx, req)
}
