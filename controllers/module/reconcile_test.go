// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package module

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/controllerstest"
	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/internal/systemd/unit"
	"github.com/reconciled/reconciled/reconcile"
)

// world is one Reconciler against a fake store and a fake systemd, driven
// step by step without an engine: reconcile() is one Reconcile of "web",
// reload() is one run of the reload batcher.
type world struct {
	t     *testing.T
	store *controllerstest.Store
	sd    *fakeSystemd
	r     *Reconciler
}

func newWorld(t *testing.T) *world {
	t.Helper()
	sd := newFakeSystemd(t.TempDir())
	store := controllerstest.NewStore()
	r, err := NewReconciler(Options{Store: store, StateDir: t.TempDir(), Log: logr.Discard(), Systemd: map[string]Systemd{"system": sd}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &world{t: t, store: store, sd: sd, r: r}
}

func webModule(mutate ...func(*v1alpha1.Module)) *v1alpha1.Module {
	m := &v1alpha1.Module{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindModule},
		ObjectMeta: v1alpha1.ObjectMeta{Name: "web", Generation: 1}, Spec: v1alpha1.ModuleSpec{Exec: []string{"/usr/bin/web", "--port=80"}}}
	for _, f := range mutate {
		f(m)
	}
	return m
}

func (w *world) reconcile() (reconcile.Result, error) {
	return w.r.Reconcile(context.Background(), reconcile.Request{Name: "web"})
}

func (w *world) reload() error {
	_, err := w.r.reload.Reconcile(context.Background(), "system")
	return err
}

// ready returns the Module's phase and Ready condition as "phase reason: message".
func (w *world) ready() string {
	st, _ := w.store.Status(v1alpha1.KindModule, "web").(v1alpha1.ModuleStatus)
	c := st.Condition(v1alpha1.ConditionReady)
	if c == nil {
		return st.Phase + " (no Ready)"
	}
	return st.Phase + " " + c.Reason + ": " + c.Message
}

func (w *world) unitPath() string { return filepath.Join(w.sd.dir, "web.service") }

// step is one thing that happens, and what the controller must do.
type step struct {
	do        func(w *world) error // nil: one reconcile
	calls     string               // the systemd calls it makes, in order
	status    string               // prefix of w.ready(), if set
	wantErr   bool
	requeueGE time.Duration // the result asks to look again at least this late
}

func reconcileStep(calls, status string) step { return step{calls: calls, status: status} }

// converged takes a new Module "web" to an active unit: written, reloaded,
// enabled and started.
var converged = []step{
	{do: func(w *world) error { w.store.Put(webModule()); return nil }},
	reconcileStep("", "Inactive Pending: waiting for systemd to reload"),
	{do: (*world).reload, calls: "reload"},
	reconcileStep("enable web.service, start web.service", "Inactive Pending"),
	reconcileStep("", "Active Active: web.service is active (running)"),
}

func TestModuleReconcile(t *testing.T) {
	for name, steps := range map[string][]step{
		"new module is written, reloaded, enabled and started": converged,
		"a foreign unit file is a conflict, left alone": {
			{do: func(w *world) error {
				return os.WriteFile(w.unitPath(), []byte("[Service]\nExecStart=/bin/theirs\n"), 0o644)
			}},
			{do: func(w *world) error { w.store.Put(webModule()); return nil }},
			{calls: "", status: "Failed UnitConflict: ", requeueGE: time.Minute},
			{do: func(w *world) error {
				if b, _ := os.ReadFile(w.unitPath()); string(b) != "[Service]\nExecStart=/bin/theirs\n" {
					return errors.New("the foreign file was changed")
				}
				return nil
			}},
		},
		"a unit defined elsewhere is a conflict": {
			{do: func(w *world) error {
				w.sd.others["web.service"] = []string{"/lib/systemd/system/web.service"}
				return nil
			}},
			{do: func(w *world) error { w.store.Put(webModule()); return nil }},
			{status: "Failed UnitConflict: web.service is already defined by /lib/systemd/system/web.service", requeueGE: time.Minute},
			{do: func(w *world) error {
				if _, err := os.Stat(w.unitPath()); err == nil {
					return errors.New("a unit file was written over a vendor unit")
				}
				return nil
			}},
		},
		"nothing is written while systemd does not answer": {
			{do: func(w *world) error { w.sd.down = true; w.store.Put(webModule()); return nil }},
			{status: "Inactive SystemdUnavailable: waiting for the system systemd"},
			{do: func(w *world) error {
				if _, err := os.Stat(w.unitPath()); err == nil {
					return errors.New("unit file written while systemd is down")
				}
				w.sd.down = false
				return nil
			}},
			reconcileStep("", "Inactive Pending: waiting for systemd to reload"),
		},
		"a scope without a systemd fails the Module": {
			{do: func(w *world) error {
				w.store.Put(webModule(func(m *v1alpha1.Module) { m.Spec.Scope = "user" }))
				return nil
			}},
			{status: "Failed ScopeUnavailable: this daemon has no connection to the user systemd"},
		},
		"a spec change restarts the unit after the reload": append(append([]step{}, converged...),
			step{do: func(w *world) error {
				w.store.Put(webModule(func(m *v1alpha1.Module) { m.Spec.Exec = []string{"/usr/bin/web", "--port=81"}; m.Generation = 2 }))
				return nil
			}},
			reconcileStep("", "Inactive Pending: waiting for systemd to reload"),
			step{do: (*world).reload, calls: "reload"},
			reconcileStep("restart web.service", "Active Active"),
			reconcileStep("", "Active Active"),
		),
		"state Stopped stops the unit": append(append([]step{}, converged...),
			step{do: func(w *world) error {
				w.store.Put(webModule(func(m *v1alpha1.Module) { m.Spec.State = "Stopped" }))
				return nil
			}},
			reconcileStep("stop web.service", "Active Pending"),
			reconcileStep("", "Inactive Stopped: web.service is inactive (dead)"),
		),
		"an outside stop is reverted": append(append([]step{}, converged...),
			step{do: func(w *world) error {
				w.r.state("web").lastStart = time.Now().Add(-time.Hour) // long after our start
				w.sd.set("web.service", func(us *systemd.UnitState) { us.ActiveState, us.SubState = "inactive", "dead" })
				return nil
			}},
			reconcileStep("start web.service", "Inactive Pending"),
		),
		"a failed unit stays failed until its spec changes": append(append([]step{}, converged...),
			step{do: func(w *world) error {
				w.sd.set("web.service", func(us *systemd.UnitState) { us.ActiveState, us.Result = "failed", "exit-code" })
				return nil
			}},
			reconcileStep("", "Failed UnitFailed: web.service failed (result: exit-code)"),
			reconcileStep("", "Failed UnitFailed"),
		),
		"a requested restart restarts the unit": append(append([]step{}, converged...),
			step{do: func(w *world) error { return w.r.RequestRestart("web") }},
			reconcileStep("restart web.service", "Active Active"),
		),
		"a deleted Module's unit is stopped, disabled and removed": append(append([]step{}, converged...),
			step{do: func(w *world) error { w.store.Delete(v1alpha1.KindModule, "web"); return nil }},
			reconcileStep("stop web.service, disable web.service, reload", ""),
			step{do: func(w *world) error {
				if _, err := os.Stat(w.unitPath()); !errors.Is(err, os.ErrNotExist) {
					return errors.New("unit file still there")
				}
				if _, ok := w.r.records.Get("web"); ok {
					return errors.New("ownership record kept")
				}
				return nil
			}},
			reconcileStep("", ""), // nothing left to do
		),
		"a failed daemon-reload is shown and retried": {
			{do: func(w *world) error {
				w.sd.reloadErr = errors.New("Access denied")
				w.store.Put(webModule())
				return nil
			}},
			reconcileStep("", "Inactive Pending: waiting for systemd to reload"),
			{do: (*world).reload, calls: "reload", wantErr: true},
			reconcileStep("", "Inactive Pending: daemon-reload failed, retrying: Access denied"),
			{do: func(w *world) error { w.sd.reloadErr = nil; return w.reload() }, calls: "reload"},
			reconcileStep("enable web.service, start web.service", "Inactive Pending"),
		},
		"a unit file changed on disk by hand is written back": append(append([]step{}, converged...),
			step{do: func(w *world) error {
				b, _ := os.ReadFile(w.unitPath())
				return os.WriteFile(w.unitPath(), append(b, "# edited\n"...), 0o644)
			}},
			reconcileStep("", "Inactive Pending: waiting for systemd to reload"),
		),
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			for i, s := range steps {
				var res reconcile.Result
				var err error
				if s.do != nil {
					err = s.do(w)
				} else {
					res, err = w.reconcile()
				}
				if (err != nil) != s.wantErr {
					t.Fatalf("step %d: error %v, want error %v", i, err, s.wantErr)
				}
				if got := w.sd.takeCalls(); got != s.calls {
					t.Fatalf("step %d: systemd calls %q, want %q", i, got, s.calls)
				}
				if s.status != "" && !strings.HasPrefix(w.ready(), s.status) {
					t.Fatalf("step %d: status %q, want prefix %q", i, w.ready(), s.status)
				}
				if res.RequeueAfter < s.requeueGE {
					t.Fatalf("step %d: requeue after %s, want >= %s", i, res.RequeueAfter, s.requeueGE)
				}
			}
		})
	}
}

// The unit file the controller writes is marked as its own for this
// Module, so a restarted daemon (or another Module) can tell it apart.
func TestModuleReconcileWritesManagedUnit(t *testing.T) {
	w := newWorld(t)
	w.store.Put(webModule())
	if _, err := w.reconcile(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.unitPath())
	if err != nil {
		t.Fatal(err)
	}
	if owner, ok := unit.IsManaged(b); !ok || owner != "web" {
		t.Fatalf("unit file owner %q %v, want web:\n%s", owner, ok, b)
	}
	if !strings.Contains(string(b), "ExecStart=/usr/bin/web --port=80") {
		t.Fatalf("unit file does not run the spec's exec:\n%s", b)
	}
}
