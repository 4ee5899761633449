// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/controllerstest"
	"github.com/reconciled/reconciled/reconcile"
)

// recorder keeps events.
type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) Eventf(kind, name, typ, reason, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, typ+" "+reason+" "+fmt.Sprintf(format, args...))
}

func f(v float64) *float64 { return &v }

// The value comes from a real command reading a file the test writes; the
// levels move with hysteresis (for: 2), every change is an event with the
// previous level, an error is Unknown, and the history and the level
// survive a restart of the controller.
func TestCheckLevels(t *testing.T) {
	dir := t.TempDir()
	valueFile := filepath.Join(dir, "value")
	set := func(v string) { os.WriteFile(valueFile, []byte(v), 0o644) }
	set("50")
	store := controllerstest.NewStore()
	chk := &v1alpha1.Check{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindCheck},
		ObjectMeta: v1alpha1.ObjectMeta{Name: "usage", Generation: 1},
		Spec: v1alpha1.CheckSpec{Exec: &v1alpha1.ExecCheck{Command: []string{"/bin/cat", valueFile}}, For: 2,
			Levels: []v1alpha1.LevelRule{{Level: "dead", Above: f(98)}, {Level: "critical", Above: f(95)}, {Level: "sick", Above: f(90)}, {Level: "soso", Above: f(80)}}}}
	chk.Default()
	if errs := chk.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	store.Put(chk)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	newR := func() *Reconciler {
		return NewReconciler(Options{Store: store, Events: rec, Log: logr.Discard(), Registerer: reg, HistoryDir: filepath.Join(dir, "history"),
			Now: func() time.Time { return now }})
	}
	r := newR()
	if _, err := r.Reconcile(context.Background(), reconcile.Request{Name: "usage"}); err != nil {
		t.Fatal(err)
	}
	r.first.Wait()                          // a new Check is evaluated at once
	status := func() v1alpha1.CheckStatus { // as the API serves it
		o, _ := store.Get(v1alpha1.KindCheck, "usage")
		return r.Overlay(o).(*v1alpha1.Check).Status
	}
	step := func(v string) v1alpha1.CheckStatus {
		set(v)
		now = now.Add(time.Minute)
		r.evaluate("usage")
		return status()
	}
	// The first evaluation takes its level at once.
	if s := step("50"); s.Level != "fine" || *s.Value != 50 {
		t.Fatalf("first: %+v", s)
	}
	// One evaluation above 90 is not enough (for: 2); two are.
	if s := step("91.3"); s.Level != "fine" || *s.Value != 91.3 {
		t.Fatalf("one above 90: %+v", s)
	}
	if s := step("92"); s.Level != "sick" || s.PreviousLevel != "fine" {
		t.Fatalf("two above 90: %+v", s)
	}
	// A dip and back does not change it; a bad value is Unknown (after
	// two), never fine.
	step("85")
	step("91")
	os.Remove(valueFile)
	now = now.Add(time.Minute)
	r.evaluate("usage")
	now = now.Add(time.Minute)
	r.evaluate("usage")
	s := status()
	if s.Level != v1alpha1.CheckUnknown || s.PreviousLevel != "sick" || s.Value != nil {
		t.Fatalf("unreadable: %+v", s)
	}
	if c := s.Condition(v1alpha1.ConditionReady); c == nil || c.Reason != ReasonEvaluationFailed || !strings.Contains(c.Message, "No such file") {
		t.Fatalf("unreadable condition: %+v", c)
	}
	if got := testutil.ToFloat64(r.level.WithLabelValues("usage", "Unknown")); got != -1 {
		t.Fatalf("level metric %v", got)
	}
	step("99")
	if s := step("99.5"); s.Level != "dead" || s.PreviousLevel != v1alpha1.CheckUnknown {
		t.Fatalf("dead: %+v", s)
	}
	if got := testutil.ToFloat64(r.level.WithLabelValues("usage", "dead")); got != 4 {
		t.Fatalf("level metric %v", got)
	}
	if got := testutil.ToFloat64(r.value.WithLabelValues("usage")); got != 99.5 {
		t.Fatalf("value metric %v", got)
	}
	want := []string{
		"Warning LevelChanged fine -> sick: 92 above 90",
		"Warning LevelChanged sick -> Unknown: ",
		"Warning LevelChanged Unknown -> dead: 99.5 above 98",
	}
	rec.mu.Lock()
	evs := append([]string(nil), rec.evs...)
	rec.mu.Unlock()
	if len(evs) != len(want) {
		t.Fatalf("events %q", evs)
	}
	for i := range want {
		if !strings.HasPrefix(evs[i], want[i]) {
			t.Fatalf("event %d: %q, want %q", i, evs[i], want[i])
		}
	}
	hour, err := r.History("usage", "hour")
	if err != nil || len(hour) != 10 || hour[7].Failures != 1 || hour[9].Max != 99.5 {
		t.Fatalf("history %+v %v", hour, err)
	}
	// A restart: the level from the status, the history from disk.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Start(ctx) // stops at once and closes the histories
	r = NewReconciler(Options{Store: store, Events: rec, Log: logr.Discard(), HistoryDir: filepath.Join(dir, "history"), Now: func() time.Time { return now }})
	r.Reconcile(context.Background(), reconcile.Request{Name: "usage"})
	if s := status(); s.Level != "dead" || s.PreviousLevel != v1alpha1.CheckUnknown {
		t.Fatalf("after a restart: %+v", s)
	}
	if again, _ := r.History("usage", "hour"); len(again) != len(hour) {
		t.Fatalf("history after a restart: %d points, want %d", len(again), len(hour))
	}
	// Deleted: the history goes too.
	store.Delete(v1alpha1.KindCheck, "usage")
	r.Reconcile(context.Background(), reconcile.Request{Name: "usage"})
	if _, err := os.Stat(filepath.Join(dir, "history", "usage.json")); !os.IsNotExist(err) {
		t.Fatalf("history of a deleted check: %v", err)
	}
}

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []string
		got  string // levels after each
	}{
		{1, []string{"fine", "sick", "fine"}, "fine,sick,fine"},
		{3, []string{"fine", "sick", "sick", "soso", "sick", "sick", "sick"}, "fine,fine,fine,fine,fine,fine,sick"},
	} {
		st := &checkState{}
		var got []string
		for _, w := range tc.want {
			if st.step(w, tc.n) {
				st.level = w
			}
			got = append(got, st.level)
		}
		if strings.Join(got, ",") != tc.got {
			t.Errorf("for %d: %v, want %s", tc.n, got, tc.got)
		}
	}
}

// A corrupt history file is set aside with a Warning event; the Check
// starts a new history.
func TestCorruptHistorySetAside(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "history"), 0o700)
	os.WriteFile(filepath.Join(dir, "history", "up.json"), []byte("{torn"), 0o600)
	store := controllerstest.NewStore()
	chk := &v1alpha1.Check{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindCheck},
		ObjectMeta: v1alpha1.ObjectMeta{Name: "up", Generation: 1}, Spec: v1alpha1.CheckSpec{Uptime: &v1alpha1.UptimeSource{}}}
	chk.Default()
	store.Put(chk)
	rec := &recorder{}
	r := NewReconciler(Options{Store: store, Events: rec, Log: logr.Discard(), HistoryDir: filepath.Join(dir, "history")})
	r.Reconcile(context.Background(), reconcile.Request{Name: "up"})
	r.first.Wait()
	rec.mu.Lock()
	evs := strings.Join(rec.evs, "\n")
	rec.mu.Unlock()
	if !strings.Contains(evs, "Warning StateSetAside") || !strings.Contains(evs, "up.json.corrupt") {
		t.Fatalf("events: %s", evs)
	}
	if ps, err := r.History("up", "hour"); err != nil || len(ps) != 1 {
		t.Fatalf("a new history: %+v %v", ps, err)
	}
}
