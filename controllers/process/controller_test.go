// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/controllerstest"
	"github.com/reconciled/reconciled/reconcile"
)

// status reads the last status written for the Process name.
func status(st *controllerstest.Store, name string) v1alpha1.ProcessStatus {
	s, _ := st.Status(v1alpha1.KindProcess, name).(v1alpha1.ProcessStatus)
	return s
}

func newTestReconciler(t *testing.T, st *controllerstest.Store) *Reconciler {
	t.Helper()
	r, err := NewReconciler(Options{Store: st, StateDir: t.TempDir(), Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.mu.Lock()
		for _, p := range r.procs {
			if p.running {
				syscall.Kill(-p.pgid, syscall.SIGKILL)
			}
		}
		r.mu.Unlock()
		r.Close()
	})
	return r
}

// reconcileUntil calls Reconcile until cond holds (the engine would be
// woken by the reaper; here the test polls).
func reconcileUntil(t *testing.T, r *Reconciler, st *controllerstest.Store, name, what string, cond func(v1alpha1.ProcessStatus) bool) v1alpha1.ProcessStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.Reconcile(context.Background(), reconcile.Request{Name: name}); err != nil {
			t.Fatal(err)
		}
		s := status(st, name)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func process(name string, argv ...string) *v1alpha1.Process {
	return &v1alpha1.Process{
		TypeMeta:   v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindProcess},
		ObjectMeta: v1alpha1.ObjectMeta{Name: name, Generation: 1},
		Spec:       v1alpha1.ProcessSpec{Command: argv},
	}
}

func TestReconcileStartsAndRestartsAtOnce(t *testing.T) {
	st := controllerstest.NewStore()
	st.Put(process("p", "/bin/sleep", "100"))
	r := newTestReconciler(t, st)
	s := reconcileUntil(t, r, st, "p", "Running", func(s v1alpha1.ProcessStatus) bool { return s.Phase == v1alpha1.ProcessRunning })
	if s.Pid == 0 || s.ObservedGeneration != 1 || s.Restarts != 0 {
		t.Fatalf("status %+v", s)
	}
	if c := s.Condition(v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready condition %+v", c)
	}
	syscall.Kill(s.Pid, syscall.SIGKILL)
	s2 := reconcileUntil(t, r, st, "p", "restart", func(n v1alpha1.ProcessStatus) bool { return n.Pid != s.Pid && n.Phase == v1alpha1.ProcessRunning })
	if s2.Restarts != 1 || s2.LastExit == nil || s2.LastExit.Signal != "SIGKILL" || s2.LastExit.ExitCode != -1 {
		t.Fatalf("after crash: %+v lastExit %+v", s2, s2.LastExit)
	}
}

func TestReconcileStartFailureBacksOff(t *testing.T) {
	st := controllerstest.NewStore()
	st.Put(process("missing", "/no/such/program"))
	r := newTestReconciler(t, st)
	s := reconcileUntil(t, r, st, "missing", "BackOff", func(s v1alpha1.ProcessStatus) bool { return s.Phase == v1alpha1.ProcessBackOff })
	c := s.Condition(v1alpha1.ConditionReady)
	if c == nil || c.Reason != ReasonStartFailed || c.Message == "" {
		t.Fatalf("Ready %+v, want StartFailed with the error", c)
	}
}

// TestSpecChangeEndsBackOff: a Process stuck in BackOff (a failed start
// with a long backoff) whose spec is fixed starts at once, with a Ready
// condition about the new spec, not after the old nextRestartAt (issue 11,
// item 1; issue 12, item 3).
func TestSpecChangeEndsBackOff(t *testing.T) {
	for name, broken := range map[string]*v1alpha1.Process{
		"start failed":  process("p", "/no/such/program"),
		"crash looping": process("p", "/bin/sh", "-c", "exit 3"),
	} {
		t.Run(name, func(t *testing.T) {
			st := controllerstest.NewStore()
			broken.Spec.Backoff = &v1alpha1.Backoff{Initial: &metav1.Duration{Duration: time.Hour}, Max: &metav1.Duration{Duration: time.Hour}}
			st.Put(broken)
			r := newTestReconciler(t, st)
			s := reconcileUntil(t, r, st, "p", "a long BackOff", func(s v1alpha1.ProcessStatus) bool {
				return s.Phase == v1alpha1.ProcessBackOff && s.NextRestartAt != nil && time.Until(s.NextRestartAt.Time) > 30*time.Minute
			})
			old := s.Condition(v1alpha1.ConditionReady).Message
			fixed := process("p", "/bin/sleep", "100")
			fixed.Generation = 2
			fixed.Spec.Backoff = broken.Spec.Backoff
			st.Put(fixed)
			if _, err := r.Reconcile(context.Background(), reconcile.Request{Name: "p"}); err != nil {
				t.Fatal(err)
			}
			s = status(st, "p")
			if s.Phase != v1alpha1.ProcessRunning || s.NextRestartAt != nil {
				t.Fatalf("after the fix: phase %s, nextRestartAt %v; want Running at once", s.Phase, s.NextRestartAt)
			}
			if c := s.Condition(v1alpha1.ConditionReady); c.Message == old || c.ObservedGeneration != 2 {
				t.Errorf("Ready condition still about the old spec: %+v", c)
			}
			// The streak starts over: a crash of the new spec restarts at once.
			syscall.Kill(s.Pid, syscall.SIGKILL)
			reconcileUntil(t, r, st, "p", "an immediate restart", func(n v1alpha1.ProcessStatus) bool {
				return n.Phase == v1alpha1.ProcessRunning && n.Pid != s.Pid
			})
		})
	}
}

func TestScheduleRestartBackoff(t *testing.T) {
	pr := process("b", "/bin/true")
	pr.Default()
	p := &proc{}
	start := time.Unix(1000, 0)
	exit := start.Add(time.Second) // short runs: the streak grows
	var delays []time.Duration
	for i := 0; i < 12; i++ {
		p.scheduleRestart(pr, start, exit)
		delays = append(delays, p.nextStartAt.Sub(exit))
	}
	if delays[0] != 0 {
		t.Fatalf("first restart after %v, want immediately", delays[0])
	}
	nominal := 100 * time.Millisecond
	for i := 1; i < len(delays); i++ {
		want := min(nominal, time.Minute)
		lo, hi := time.Duration(float64(want)*0.9), time.Duration(float64(want)*1.1)
		if delays[i] < lo || delays[i] > hi {
			t.Fatalf("restart %d after %v, want %v..%v (all: %v)", i, delays[i], lo, hi, delays)
		}
		nominal *= 2
	}
	// A run longer than resetAfter ends the streak: immediate again.
	p.scheduleRestart(pr, start, start.Add(11*time.Minute))
	if d := p.nextStartAt.Sub(start.Add(11 * time.Minute)); d != 0 {
		t.Fatalf("after a long run restart in %v, want 0", d)
	}
}

func TestStatusPhases(t *testing.T) {
	pr := process("s", "/bin/true")
	pr.Spec.Readiness = &v1alpha1.Readiness{Notify: true}
	pr.Default()
	now := time.Now()
	tests := map[string]struct {
		p         *proc
		phase     string
		readyTrue bool
	}{
		"starting until ready": {p: &proc{running: true, pid: 5}, phase: v1alpha1.ProcessStarting},
		"running when ready":   {p: &proc{running: true, pid: 5, ready: true}, phase: v1alpha1.ProcessRunning, readyTrue: true},
		"stopping":             {p: &proc{running: true, pid: 5, stopping: true, ready: true}, phase: v1alpha1.ProcessStopping},
		"backoff":              {p: &proc{nextStartAt: now.Add(time.Second)}, phase: v1alpha1.ProcessBackOff},
		"completed":            {p: &proc{done: true, succeeded: true}, phase: v1alpha1.ProcessCompleted},
		"failed":               {p: &proc{done: true}, phase: v1alpha1.ProcessFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := tc.p.status(pr)
			if s.Phase != tc.phase {
				t.Fatalf("phase %s, want %s", s.Phase, tc.phase)
			}
			c := s.Condition(v1alpha1.ConditionReady)
			if c == nil || (c.Status == metav1.ConditionTrue) != tc.readyTrue || c.Reason == "" {
				t.Fatalf("Ready %+v", c)
			}
			if tc.phase == v1alpha1.ProcessBackOff && s.NextRestartAt == nil {
				t.Fatal("BackOff without nextRestartAt")
			}
		})
	}
}

// TestRestartsCounterMatchesStatus: reconciled_process_restarts_total
// starts at the restarts the status carries, so it agrees with RESTARTS
// after a daemon restart or a delete and re-create (issue 11).
func TestRestartsCounterMatchesStatus(t *testing.T) {
	st := controllerstest.NewStore()
	pr := process("p", "/bin/sleep", "100")
	st.Put(pr)
	st.UpdateStatus(v1alpha1.KindProcess, "p", v1alpha1.ProcessStatus{Restarts: 5})
	r := newTestReconciler(t, st)
	s := reconcileUntil(t, r, st, "p", "Running", func(s v1alpha1.ProcessStatus) bool { return s.Phase == v1alpha1.ProcessRunning })
	if got := testutil.ToFloat64(r.restartsTotal.WithLabelValues("p")); got != float64(s.Restarts) || got != 5 {
		t.Errorf("restarts_total %v, status restarts %d; want both 5", got, s.Restarts)
	}
	syscall.Kill(s.Pid, syscall.SIGKILL)
	s = reconcileUntil(t, r, st, "p", "a restart", func(n v1alpha1.ProcessStatus) bool { return n.Restarts == 6 && n.Phase == v1alpha1.ProcessRunning })
	if got := testutil.ToFloat64(r.restartsTotal.WithLabelValues("p")); got != 6 {
		t.Errorf("restarts_total %v after a crash, status says %d", got, s.Restarts)
	}
}

// TestHashFilesNeverBlocks: a FIFO or /dev/zero named in restartOnChange is
// not read (it would block a worker or never end), and a change of a
// regular file still changes the hash.
func TestHashFilesNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fifo, zero, conf := filepath.Join(dir, "fifo"), filepath.Join(dir, "zero"), filepath.Join(dir, "conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", zero)
	os.WriteFile(conf, []byte("a"), 0o644)
	h1 := hashFiles([]string{fifo, zero, conf})
	os.WriteFile(conf, []byte("b"), 0o644)
	if h2 := hashFiles([]string{fifo, zero, conf}); h2 == h1 {
		t.Error("a change of the regular file did not change the hash")
	}
}

// A corrupt adoption record file is set aside, with an event: the daemon
// starts (adopting by the environment marker only) instead of refusing to.
func TestCorruptRecordsSetAside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "processes.json"), []byte("{torn"), 0o640)
	rec := &recordedEvents{}
	r, err := NewReconciler(Options{Store: controllerstest.NewStore(), StateDir: dir, Log: logr.Discard(), Events: rec})
	if err != nil {
		t.Fatalf("NewReconciler with a corrupt record file: %v", err)
	}
	r.Close()
	if _, err := os.Stat(filepath.Join(dir, "processes.json.corrupt")); err != nil {
		t.Fatalf("not set aside: %v", err)
	}
	if len(rec.got) != 1 || !strings.HasPrefix(rec.got[0], "Daemon/state Warning StateSetAside ") {
		t.Fatalf("events %q", rec.got)
	}
}

// recordedEvents is an events.Recorder that keeps "kind/name type reason
// message" lines.
type recordedEvents struct{ got []string }

func (r *recordedEvents) Eventf(kind, name, typ, reason, format string, args ...any) {
	r.got = append(r.got, fmt.Sprintf("%s/%s %s %s %s", kind, name, typ, reason, fmt.Sprintf(format, args...)))
}
