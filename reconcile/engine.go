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
	controllers []*Controller
	started     bool
	reconcileID atomic.Uint64
}

// Options configures an Engine.
type Options struct {
	// Log is the base logger; each reconcile gets kind, name and reconcileID.
	Log logr.Logger
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// ControllerOptions configures one kind's controller.
type ControllerOptions struct {
	// MaxConcurrentReconciles is the number of workers (default 2).
	MaxConcurrentReconciles int
	// RateLimiter decides error backoff; default: per-item exponential
	// 5ms..1000s combined with a 10 qps / 100 burst token bucket.
	RateLimiter workqueue.TypedRateLimiter[Request]
}

// Controller is one kind's queue and workers.
type Controller struct {
	kind  string
	r     Reconciler
	opts  ControllerOptions
	queue workqueue.TypedRateLimitingInterface[Request]
	e     *Engine

	mu      sync.Mutex
	running map[Request]time.Time // reconciles in progress, since when
}

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
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(c.queue.Len()), c.kind)
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
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return nil, fmt.Errorf("register %s: engine already started", kind)
	}
	for _, c := range e.controllers {
		if c.kind == kind {
			return nil, fmt.Errorf("register %s: already registered", kind)
		}
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 2
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.DefaultTypedControllerRateLimiter[Request]()
	}
	c := &Controller{
		kind: kind, r: r, opts: opts, e: e, running: map[Request]time.Time{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter, workqueue.TypedRateLimitingQueueConfig[Request]{Name: kind}),
	}
	e.controllers = append(e.controllers, c)
	for _, res := range []string{ResultSuccess, ResultRequeue, ResultError, ResultPanic} {
		e.metrics.total.WithLabelValues(kind, res)
	}
	return c, nil
}

// Start runs every controller's workers and blocks until ctx is done; then
// it shuts the queues down and waits for running reconciles to return.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	e.started = true
	ctrls := append([]*Controller(nil), e.controllers...)
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range ctrls {
		for i := 0; i < c.opts.MaxConcurrentReconciles; i++ {
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
		c.queue.ShutDownWithDrain()
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
	ctrls := append([]*Controller(nil), e.controllers...)
	e.mu.Unlock()
	now := time.Now()
	var stuck []string
	for _, c := range ctrls {
		c.mu.Lock()
		for req, since := range c.running {
			if d := now.Sub(since); d > limit {
				stuck = append(stuck, fmt.Sprintf("%s/%s: reconcile running for %s", c.kind, req.Name, d.Round(time.Second)))
			}
		}
		c.mu.Unlock()
	}
	if len(stuck) == 0 {
		return nil
	}
	sort.Strings(stuck)
	return errors.New(strings.Join(stuck, "; "))
}

// Kind returns the controller's kind.
func (c *Controller) Kind() string { return c.kind }

// Enqueue schedules a reconcile of name. Adding a name that is already
// waiting does nothing; adding one being reconciled runs it once more after.
func (c *Controller) Enqueue(name string) {
	c.queue.Add(Request{Name: name})
}

// EnqueueAfter schedules a reconcile of name after d.
func (c *Controller) EnqueueAfter(name string, d time.Duration) {
	c.queue.AddAfter(Request{Name: name}, d)
}

// Len returns the number of objects waiting.
func (c *Controller) Len() int { return c.queue.Len() }

func (c *Controller) processNext(ctx context.Context) bool {
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
	log := c.e.log.WithValues("kind", c.kind, "name", req.Name, "reconcileID", strconv.FormatUint(id, 10))
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
func (c *Controller) reconcile(ctx context.Context, req Request) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{msg: fmt.Sprintf("panic in reconcile: %v\n%s", r, debug.Stack())}
		}
	}()
	return c.r.Reconcile(ctx, req)
}
