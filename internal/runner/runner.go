// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package runner runs the daemon's long-lived parts in order, as
// controller-runtime's manager runs its Runnables: every part has one shape
// (Start(ctx) error, blocking until ctx is done), parts are grouped in
// stages, and stages start in order and stop in reverse, each waited for.
//
// reconciled has three stages: the resource store (its watch and status
// writer), then the controllers (the engine and what feeds it), then the
// servers (API listeners, MQTT, netboot). Stopping runs backwards: the
// servers first, so no new request arrives while the controllers drain;
// the store last, so the controllers' final statuses are written.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Runnable is a long-lived part of the daemon. Start blocks until ctx is
// done, then cleans up and returns nil. An error stops the daemon; nil
// before ctx is done means the part has nothing more to do.
type Runnable interface {
	Start(ctx context.Context) error
}

// Func is a Runnable from a function.
type Func func(ctx context.Context) error

// Start calls f.
func (f Func) Start(ctx context.Context) error { return f(ctx) }

// Stage orders the parts: a stage starts after every earlier one and stops
// before them.
type Stage int

// The daemon's stages, in start order.
const (
	Store Stage = iota
	Controllers
	Servers
	numStages
)

func (s Stage) String() string {
	switch s {
	case Store:
		return "store"
	case Controllers:
		return "controllers"
	case Servers:
		return "servers"
	}
	return fmt.Sprintf("stage %d", int(s))
}

type part struct {
	name string
	r    Runnable
}

// Runner runs Runnables by stage. Add everything, then Run once.
type Runner struct {
	log    logr.Logger
	stages [numStages][]part
	after  [numStages][]func()
	// slowStop is after how long a stage that has not stopped is logged.
	slowStop time.Duration
}

// New returns an empty Runner that logs to log.
func New(log logr.Logger) *Runner {
	return &Runner{log: log, slowStop: 10 * time.Second}
}

// Add puts r in stage under name (for logs and errors). A nil r is
// ignored, for optional parts.
func (g *Runner) Add(stage Stage, name string, r Runnable) {
	if r == nil {
		return
	}
	g.stages[stage] = append(g.stages[stage], part{name, r})
}

// AfterStop has fn called once every part of stage has stopped, before
// the earlier stages stop (closing what the stage's parts used: records
// the controllers write, a socket file the servers served). Functions run
// in the order added.
func (g *Runner) AfterStop(stage Stage, fn func()) {
	g.after[stage] = append(g.after[stage], fn)
}

// Run starts the stages in order and blocks until ctx is done or a part
// fails; then it stops the stages in reverse order, waiting for each. It
// returns the errors of the parts that failed. Started is called (if not
// nil) once every stage has been started.
func (g *Runner) Run(ctx context.Context, started func()) error {
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var (
		mu      sync.Mutex
		errs    []error
		stages  []running
		failed  = make(chan struct{})
		failOne sync.Once
	)
	for s, parts := range g.stages {
		// Each stage has its own context: stopping one leaves the
		// others running until their turn.
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Go(func() {
				if err := p.r.Start(sctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
					mu.Unlock()
					failOne.Do(func() { close(failed) })
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		stages = append(stages, running{cancel, done})
		g.log.V(1).Info("stage started", "stage", Stage(s).String(), "parts", len(parts))
	}
	if started != nil {
		started()
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	for s := len(stages) - 1; s >= 0; s-- {
		stages[s].cancel()
		select {
		case <-stages[s].done:
		case <-time.After(g.slowStop):
			g.log.Info("still stopping", "stage", Stage(s).String())
			<-stages[s].done
		}
		for _, fn := range g.after[s] {
			fn()
		}
		g.log.V(1).Info("stage stopped", "stage", Stage(s).String())
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}
