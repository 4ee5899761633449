// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func TestMatch(t *testing.T) {
	a := receivers.Alert{
		Name: "LinkDown", Kind: "Link", Object: "a2rtr", Severity: "warning",
		Labels: map[string]string{"site": "hecnet", "tier": "core"},
	}
	for _, tc := range []struct {
		name  string
		match v1alpha1.AlertMatch
		want  bool
	}{
		{"empty matches all", v1alpha1.AlertMatch{}, true},
		{"kind", v1alpha1.AlertMatch{Kinds: []string{"Link"}}, true},
		{"kind case-insensitive", v1alpha1.AlertMatch{Kinds: []string{"link"}}, true},
		{"kind plural alias", v1alpha1.AlertMatch{Kinds: []string{"links"}}, true},
		{"kind among several", v1alpha1.AlertMatch{Kinds: []string{"Process", "LINK"}}, true},
		{"other kind", v1alpha1.AlertMatch{Kinds: []string{"Process"}}, false},
		{"exact name", v1alpha1.AlertMatch{Names: []string{"a2rtr"}}, true},
		{"glob", v1alpha1.AlertMatch{Names: []string{"pydecnet*", "a2*"}}, true},
		{"glob class", v1alpha1.AlertMatch{Names: []string{"a[0-9]rtr"}}, true},
		{"glob no match", v1alpha1.AlertMatch{Names: []string{"pydecnet*"}}, false},
		{"bad glob", v1alpha1.AlertMatch{Names: []string{"a2[rtr"}}, false},
		{"label", v1alpha1.AlertMatch{Labels: map[string]string{"site": "hecnet"}}, true},
		{"labels all", v1alpha1.AlertMatch{Labels: map[string]string{"site": "hecnet", "tier": "core"}}, true},
		{"label other value", v1alpha1.AlertMatch{Labels: map[string]string{"site": "home"}}, false},
		{"label missing", v1alpha1.AlertMatch{Labels: map[string]string{"room": ""}}, false},
		{"severity info", v1alpha1.AlertMatch{Severity: "info"}, true},
		{"severity warning", v1alpha1.AlertMatch{Severity: "warning"}, true},
		{"severity critical", v1alpha1.AlertMatch{Severity: "critical"}, false},
		{"everything", v1alpha1.AlertMatch{Kinds: []string{"Link"}, Names: []string{"a2*"}, Labels: map[string]string{"site": "hecnet"}, Severity: "warning"}, true},
		{"everything but kind", v1alpha1.AlertMatch{Kinds: []string{"Module"}, Names: []string{"a2*"}, Labels: map[string]string{"site": "hecnet"}, Severity: "warning"}, false},
		{"levels: not a Check", v1alpha1.AlertMatch{Levels: []string{"critical"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newMatcher(tc.match).matches(a); got != tc.want {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
	crit := a
	crit.Severity = "critical"
	if !newMatcher(v1alpha1.AlertMatch{Severity: "warning"}).matches(crit) {
		t.Error("critical alert does not match minimum warning")
	}
	info := a
	info.Severity = "info"
	if newMatcher(v1alpha1.AlertMatch{Severity: "warning"}).matches(info) {
		t.Error("info alert matches minimum warning")
	}
}

// A Check's alert is selected by its level and the level before it.
func TestMatchLevels(t *testing.T) {
	a := receivers.Alert{Name: "CheckLevel", Kind: "Check", Object: "root-usage", Severity: "critical",
		Labels: map[string]string{receivers.LabelLevel: "critical", receivers.LabelPreviousLevel: "sick"}}
	for _, tc := range []struct {
		match v1alpha1.AlertMatch
		want  bool
	}{
		{v1alpha1.AlertMatch{Levels: []string{"critical", "dead"}}, true},
		{v1alpha1.AlertMatch{Levels: []string{"dead"}}, false},
		{v1alpha1.AlertMatch{FromLevels: []string{"sick"}}, true},
		{v1alpha1.AlertMatch{FromLevels: []string{"fine", "soso"}}, false},
		{v1alpha1.AlertMatch{Levels: []string{"critical"}, FromLevels: []string{"fine", "sick"}, Kinds: []string{"chk"}}, true},
	} {
		if got := newMatcher(tc.match).matches(a); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.match, got, tc.want)
		}
	}
}

// A firing alert whose labels change (a Check's new level) is notified
// again after groupWait, not at the repeat, and carries the labels it had
// (for Alertmanager to end them); a message change alone waits.
func TestRelabelledAlertIsNews(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	if err := m.SetRoute("checks", routeSpec(20*time.Millisecond, time.Hour, true, "checks")); err != nil {
		t.Fatal(err)
	}
	a := newAlert("Check", "queue", "CheckLevel")
	a.Labels[receivers.LabelLevel] = "sick"
	m.Set(a)
	eventually(t, "first notification", func() bool { return fs.get("checks").count() == 1 })
	b := a
	b.Message = "another message"
	m.Set(b)
	c := b
	c.Labels = maps.Clone(a.Labels)
	c.Labels[receivers.LabelLevel] = "critical"
	m.Set(c)
	eventually(t, "the new level notified", func() bool { return fs.get("checks").count() == 2 })
	ns := fs.get("checks").notifications()
	last := ns[len(ns)-1].Alerts[0]
	if last.Labels[receivers.LabelLevel] != "critical" || len(last.Replaced) != 1 || last.Replaced[0][receivers.LabelLevel] != "sick" {
		t.Fatalf("second notification: %+v", last)
	}
	am := receivers.AlertmanagerAlerts(ns[len(ns)-1])
	if len(am) != 2 || am[1].Labels["level"] != "sick" || am[1].EndsAt.IsZero() || !am[0].EndsAt.IsZero() {
		t.Fatalf("for Alertmanager: %+v", am)
	}
}

func TestRoutesMatchIndependently(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	links := routeSpec(20*time.Millisecond, time.Hour, true, "links")
	links.Match.Kinds = []string{"Link"}
	procs := routeSpec(20*time.Millisecond, time.Hour, true, "procs")
	procs.Match.Kinds = []string{"Process"}
	all := routeSpec(20*time.Millisecond, time.Hour, true, "all")
	for name, s := range map[string]v1alpha1.AlertRouteSpec{"links": links, "procs": procs, "all": all} {
		if err := m.SetRoute(name, s); err != nil {
			t.Fatal(err)
		}
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	m.Set(newAlert("Process", "pydecnet", "ProcessBackOff"))
	eventually(t, "deliveries", func() bool {
		return fs.get("links").count() == 1 && fs.get("procs").count() == 1 && fs.get("all").count() == 2
	})
	if n := fs.get("links").notifications()[0]; n.Route != "links" || n.GroupKey != "Link/a2rtr" {
		t.Errorf("links got %+v", n)
	}
	if n := fs.get("procs").notifications()[0]; n.Route != "procs" || n.GroupKey != "Process/pydecnet" {
		t.Errorf("procs got %+v", n)
	}
}

func TestGroupWaitBatches(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	const gw = 150 * time.Millisecond
	if err := m.SetRoute("r", routeSpec(gw, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	m.Set(newAlert("Link", "a2rtr", "LinkDegraded"))
	m.Set(newAlert("Link", "other", "LinkDown"))
	r := fs.get("a")
	eventually(t, "two notifications", func() bool { return r.count() == 2 })
	byGroup := map[string]receivers.Notification{}
	for _, n := range r.notifications() {
		byGroup[n.GroupKey] = n
		if n.CreatedAt.Sub(t0) < gw {
			t.Errorf("notification %s created %v after the first alert, before groupWait", n.GroupKey, n.CreatedAt.Sub(t0))
		}
		if n.Status != receivers.StatusFiring || n.Host != "testhost" || n.Route != "r" || n.ID == "" || n.Test {
			t.Errorf("bad notification %+v", n)
		}
	}
	if n := byGroup["Link/a2rtr"]; len(n.Alerts) != 2 {
		t.Errorf("a2rtr notification has %d alerts, want 2", len(n.Alerts))
	}
	if n := byGroup["Link/other"]; len(n.Alerts) != 1 {
		t.Errorf("other notification has %d alerts, want 1", len(n.Alerts))
	}
	// A repeated, unchanged Set is a no-op and nothing more is sent.
	m.Set(newAlert("Link", "other", "LinkDown"))
	consistently(t, "no more notifications", 3*gw, func() bool { return r.count() == 2 })
}

func TestSetUnchangedIsNoop(t *testing.T) {
	fs := newFakes()
	m, err := New(testOptions(fs, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetRoute("r", routeSpec(time.Hour, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	a := newAlert("Link", "a2rtr", "LinkDown")
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.setLocked(a, time.Now()) {
		t.Fatal("first Set did not change anything")
	}
	b := a
	b.Labels = map[string]string{"kind": "Link", "name": "a2rtr", "severity": "warning", "site": "hecnet"}
	if m.setLocked(b, time.Now()) {
		t.Error("repeated Set changed something")
	}
	if m.setLocked(resolve(newAlert("Link", "x", "LinkDown")), time.Now()) {
		t.Error("resolving an unknown alert changed something")
	}
}

func TestFlapSendsNothing(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	const gw = 50 * time.Millisecond
	if err := m.SetRoute("r", routeSpec(gw, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	a := newAlert("Link", "a2rtr", "LinkDown")
	m.Set(a)
	m.Set(resolve(a))
	eventually(t, "group forgotten", func() bool { return m.groupCount() == 0 })
	if n, _ := fs.get("a").attemptLog(); len(n) != 0 || m.outboxLen() != 0 {
		t.Fatalf("flap produced %d attempts, %d outbox entries", len(n), m.outboxLen())
	}
	if len(m.Alerts()) != 0 {
		t.Errorf("Alerts() = %v after resolution", m.Alerts())
	}

	// A flap of an alert that was already notified (resolved and firing
	// again within groupWait) sends nothing either.
	m.Set(a)
	eventually(t, "firing notification", func() bool { return fs.get("a").count() == 1 })
	m.Set(resolve(a))
	a.StartsAt = time.Now()
	m.Set(a)
	consistently(t, "no notification for the flap", 4*gw, func() bool { return fs.get("a").count() == 1 })
	if m.groupCount() != 1 {
		t.Errorf("groups = %d, want 1", m.groupCount())
	}
}

func TestRepeatInterval(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	const ri = 80 * time.Millisecond
	if err := m.SetRoute("r", routeSpec(20*time.Millisecond, ri, true, "a")); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	r := fs.get("a")
	eventually(t, "three notifications", func() bool { return r.count() >= 3 })
	ns := r.notifications()
	ids := map[string]bool{}
	for i, n := range ns {
		if n.Status != receivers.StatusFiring || len(n.Alerts) != 1 {
			t.Errorf("notification %d: %+v", i, n)
		}
		if ids[n.ID] {
			t.Errorf("notification %d repeats ID %s", i, n.ID)
		}
		ids[n.ID] = true
		if i > 0 {
			if gap := n.CreatedAt.Sub(ns[i-1].CreatedAt); gap < ri {
				t.Errorf("repeat %d after %v, want >= %v", i, gap, ri)
			}
		}
	}
}

func TestResolved(t *testing.T) {
	const gw = 40 * time.Millisecond
	t.Run("sendResolved", func(t *testing.T) {
		fs := newFakes()
		m, _ := start(t, testOptions(fs, ""))
		if err := m.SetRoute("r", routeSpec(gw, time.Hour, true, "a")); err != nil {
			t.Fatal(err)
		}
		r := fs.get("a")
		down := newAlert("Link", "a2rtr", "LinkDown")
		slow := newAlert("Link", "a2rtr", "LinkDegraded")
		m.Set(down)
		m.Set(slow)
		eventually(t, "firing notification", func() bool { return r.count() == 1 })

		// One of two resolves: a firing notification with both.
		m.Set(resolve(slow))
		eventually(t, "second notification", func() bool { return r.count() == 2 })
		n := r.notifications()[1]
		if n.Status != receivers.StatusFiring || len(n.Alerts) != 2 {
			t.Fatalf("second notification %+v", n)
		}
		firing := 0
		for _, a := range n.Alerts {
			if a.Firing() {
				firing++
			}
		}
		if firing != 1 {
			t.Errorf("second notification has %d firing alerts, want 1", firing)
		}
		if gap := n.CreatedAt.Sub(r.notifications()[0].CreatedAt); gap < gw {
			t.Errorf("second notification %v after the first, want >= groupWait", gap)
		}

		m.Set(resolve(down))
		eventually(t, "resolved notification", func() bool { return r.count() == 3 })
		n = r.notifications()[2]
		if n.Status != receivers.StatusResolved || len(n.Alerts) != 1 || n.Alerts[0].Firing() || n.Alerts[0].Name != "LinkDown" {
			t.Fatalf("resolved notification %+v", n)
		}
		eventually(t, "group forgotten", func() bool { return m.groupCount() == 0 })
		consistently(t, "nothing more", 3*gw, func() bool { return r.count() == 3 })
	})
	t.Run("noSendResolved", func(t *testing.T) {
		fs := newFakes()
		m, _ := start(t, testOptions(fs, ""))
		if err := m.SetRoute("r", routeSpec(gw, time.Hour, false, "a")); err != nil {
			t.Fatal(err)
		}
		r := fs.get("a")
		a := newAlert("Link", "a2rtr", "LinkDown")
		m.Set(a)
		eventually(t, "firing notification", func() bool { return r.count() == 1 })
		m.Set(resolve(a))
		eventually(t, "group forgotten", func() bool { return m.groupCount() == 0 })
		consistently(t, "no resolved notification", 3*gw, func() bool { return r.count() == 1 })
	})
}

func TestFailingRouteDoesNotDelayOthers(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	hung := fs.get("hung")
	hung.block = make(chan struct{})
	fs.get("down").setFail(-1)
	for name, url := range map[string]string{"hung": "hung", "down": "down", "up": "up"} {
		if err := m.SetRoute(name, routeSpec(20*time.Millisecond, time.Hour, true, url)); err != nil {
			t.Fatal(err)
		}
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "delivery through the healthy route", func() bool { return fs.get("up").count() == 1 })
	eventually(t, "failures of the failing route", func() bool { return mustStatus(t, m, "down").Failed >= 2 })
	if s := mustStatus(t, m, "up"); s.Sent != 1 || s.Pending != 0 || !s.Receivers[0].Healthy || s.Phase() != v1alpha1.AlertRouteReady {
		t.Errorf("up status %+v", s)
	}
	if s := mustStatus(t, m, "down"); s.Sent != 0 || s.Pending != 1 || s.Receivers[0].Healthy || s.Phase() != v1alpha1.AlertRouteDegraded {
		t.Errorf("down status %+v", s)
	}
	if s := mustStatus(t, m, "hung"); s.Pending != 1 {
		t.Errorf("hung status %+v", s)
	}
	close(hung.block)
	eventually(t, "hung receiver delivered", func() bool { return hung.count() == 1 && mustStatus(t, m, "hung").Pending == 0 })
	fs.get("down").setFail(0)
	eventually(t, "down receiver delivered", func() bool { return fs.get("down").count() == 1 })
}

func TestRetryBackoff(t *testing.T) {
	fs := newFakes()
	o := testOptions(fs, "")
	o.RetryBase = 10 * time.Millisecond
	o.RetryMax = time.Second
	m, _ := start(t, o)
	r := fs.get("a")
	r.setFail(3)
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "a failed attempt", func() bool { return mustStatus(t, m, "r").Failed >= 1 })
	s := mustStatus(t, m, "r")
	if s.Pending != 1 || s.Receivers[0].Healthy || !strings.Contains(s.Receivers[0].LastError, "connection refused") || s.Receivers[0].LastFailure.IsZero() {
		t.Errorf("status while failing: %+v", s)
	}
	eventually(t, "delivery", func() bool { return r.count() == 1 })
	eventually(t, "final status", func() bool { return mustStatus(t, m, "r").Sent == 1 })
	s = mustStatus(t, m, "r")
	rs := s.Receivers[0]
	if s.Failed != 3 || s.Pending != 0 || !rs.Healthy || rs.Name != "fake:a" || rs.LastSuccess.IsZero() || rs.LastError == "" {
		t.Errorf("status after success: %+v", s)
	}
	times, ids := r.attemptLog()
	if len(times) != 4 {
		t.Fatalf("%d attempts, want 4", len(times))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[0] {
			t.Errorf("attempt %d has ID %s, want %s", i, ids[i], ids[0])
		}
		// Backoff RetryBase*2^(i-1), less at most a quarter of jitter.
		want := o.RetryBase << (i - 1) * 3 / 4
		if gap := times[i].Sub(times[i-1]); gap < want {
			t.Errorf("retry %d after %v, want >= %v", i, gap, want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	m := &Manager{o: Options{RetryBase: time.Second, RetryMax: 5 * time.Minute}}
	for _, tc := range []struct {
		attempts int
		max      time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {64, 5 * time.Minute}, {1000, 5 * time.Minute}} {
		// ±12.5% (internal/backoff's one convention), never over RetryMax.
		lo, hi := tc.max*7/8, min(tc.max*9/8, 5*time.Minute)
		for range 50 {
			d := m.backoff(tc.attempts)
			if d > hi || d < lo {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.attempts, d, lo, hi)
			}
		}
	}
}

func TestDeliveryOrderWithinGroup(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	r := fs.get("a")
	r.setFail(-1)
	if err := m.SetRoute("r", routeSpec(20*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	a := newAlert("Link", "a2rtr", "LinkDown")
	m.Set(a)
	eventually(t, "failing firing notification", func() bool { return mustStatus(t, m, "r").Failed >= 1 })
	m.Set(resolve(a))
	eventually(t, "resolved notification queued", func() bool { return mustStatus(t, m, "r").Pending == 2 })
	_, ids := r.attemptLog()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("the resolved notification was tried before the firing one was accepted")
		}
	}
	r.setFail(0)
	eventually(t, "both delivered", func() bool { return r.count() == 2 })
	ns := r.notifications()
	if ns[0].Status != receivers.StatusFiring || ns[1].Status != receivers.StatusResolved {
		t.Errorf("delivered %s then %s", ns[0].Status, ns[1].Status)
	}
}

func TestDurableAcrossCrash(t *testing.T) {
	dir := t.TempDir()
	fs := newFakes()
	r := fs.get("a")
	r.setFail(-1)
	spec := routeSpec(20*time.Millisecond, time.Hour, true, "a")
	m1, stop1 := start(t, testOptions(fs, dir))
	if err := m1.SetRoute("r", spec); err != nil {
		t.Fatal(err)
	}
	m1.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "retries", func() bool { return mustStatus(t, m1, "r").Failed >= 2 })
	_, ids := r.attemptLog()
	id := ids[0]
	// kill -9: no Close, the Manager is dropped.
	stop1()
	failedBefore := mustStatus(t, m1, "r").Failed

	r.setFail(0)
	m2, err := New(testOptions(fs, dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := m2.Alerts(); len(got) != 1 || got[0].Name != "LinkDown" {
		t.Fatalf("Alerts after restart = %+v", got)
	}
	run(t, m2)
	// The route is not known yet: its entries wait.
	consistently(t, "no delivery before SetRoute", 100*time.Millisecond, func() bool { return r.count() == 0 })
	if _, ok := m2.Status("r"); ok {
		t.Error("status of a route that is not set")
	}
	if err := m2.SetRoute("r", spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery after restart", func() bool { return r.count() == 1 })
	if got := r.notifications()[0].ID; got != id {
		t.Errorf("delivered ID %s, want %s", got, id)
	}
	consistently(t, "delivered exactly once", 200*time.Millisecond, func() bool { return r.count() == 1 })
	s := mustStatus(t, m2, "r")
	if s.Sent != 1 || s.Pending != 0 || s.Failed < failedBefore || !s.Receivers[0].Healthy {
		t.Errorf("status after restart %+v (failed before %d)", s, failedBefore)
	}
}

func TestNoResendAfterRestart(t *testing.T) {
	dir := t.TempDir()
	fs := newFakes()
	r := fs.get("a")
	spec := routeSpec(20*time.Millisecond, time.Hour, true, "a")
	m1, stop1 := start(t, testOptions(fs, dir))
	if err := m1.SetRoute("r", spec); err != nil {
		t.Fatal(err)
	}
	a := newAlert("Link", "a2rtr", "LinkDown")
	m1.Set(a)
	eventually(t, "delivery", func() bool { return r.count() == 1 && mustStatus(t, m1, "r").Pending == 0 })
	stop1()

	m2, _ := start(t, testOptions(fs, dir))
	if err := m2.SetRoute("r", spec); err != nil {
		t.Fatal(err)
	}
	m2.Set(a) // the controller reports the alert again after its restart
	consistently(t, "no re-send", 200*time.Millisecond, func() bool { return r.count() == 1 })
	if s := mustStatus(t, m2, "r"); s.Sent != 1 {
		t.Errorf("sent = %d after restart, want 1 (persisted)", s.Sent)
	}
	// The group survived: resolving sends the resolution, with a new ID.
	m2.Set(resolve(a))
	eventually(t, "resolved notification", func() bool { return r.count() == 2 })
	ns := r.notifications()
	if ns[1].Status != receivers.StatusResolved || ns[1].ID == ns[0].ID {
		t.Errorf("after restart got %+v", ns[1])
	}
	if err := m2.Close(); err != nil {
		t.Error(err)
	}
}

func TestSendTest(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	if err := m.SetRoute("r", routeSpec(time.Hour, time.Hour, true, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := m.SendTest("r"); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"a", "b"} {
		eventually(t, "test notification to "+url, func() bool { return fs.get(url).count() == 1 })
		n := fs.get(url).notifications()[0]
		if !n.Test || n.Status != receivers.StatusFiring || len(n.Alerts) != 1 || n.Alerts[0].Name != TestAlertName || !n.Alerts[0].Firing() || n.Route != "r" {
			t.Errorf("%s got %+v", url, n)
		}
	}
	if fs.get("a").notifications()[0].ID != fs.get("b").notifications()[0].ID {
		t.Error("receivers got different IDs for one notification")
	}
	if err := m.SendTest("nope"); !errors.Is(err, ErrUnknownRoute) {
		t.Errorf("SendTest(unknown) = %v", err)
	}
}

func TestRemoveRouteDropsPending(t *testing.T) {
	dir := t.TempDir()
	fs := newFakes()
	fs.get("a").setFail(-1)
	reg := prometheus.NewRegistry()
	o := testOptions(fs, dir)
	o.Registerer = reg
	m, stop := start(t, o)
	if err := m.SetRoute("r", routeSpec(20*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "pending delivery", func() bool { s := mustStatus(t, m, "r"); return s.Pending == 1 && s.Failed >= 1 })
	m.RemoveRoute("r")
	if _, ok := m.Status("r"); ok {
		t.Error("status of a removed route")
	}
	if m.outboxLen() != 0 || m.groupCount() != 0 {
		t.Errorf("outbox %d, groups %d after RemoveRoute", m.outboxLen(), m.groupCount())
	}
	if n := testutil.CollectAndCount(m.pending); n != 0 {
		t.Errorf("%d pending series after RemoveRoute", n)
	}
	stop()
	m2, err := New(testOptions(fs, dir))
	if err != nil {
		t.Fatal(err)
	}
	if m2.outboxLen() != 0 || m2.groupCount() != 0 {
		t.Errorf("after restart: outbox %d, groups %d", m2.outboxLen(), m2.groupCount())
	}
	if len(m2.Alerts()) != 1 {
		t.Errorf("the firing alert was forgotten")
	}
}

func TestDropUnknownRoutes(t *testing.T) {
	dir := t.TempDir()
	fs := newFakes()
	fs.get("a").setFail(-1)
	m1, stop := start(t, testOptions(fs, dir))
	if err := m1.SetRoute("gone", routeSpec(10*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	m1.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "pending", func() bool { return mustStatus(t, m1, "gone").Pending == 1 })
	stop()
	m2, err := New(testOptions(fs, dir))
	if err != nil {
		t.Fatal(err)
	}
	if m2.outboxLen() != 1 || m2.groupCount() != 1 {
		t.Fatalf("loaded outbox %d, groups %d", m2.outboxLen(), m2.groupCount())
	}
	m2.DropUnknownRoutes()
	if m2.outboxLen() != 0 || m2.groupCount() != 0 {
		t.Errorf("after DropUnknownRoutes: outbox %d, groups %d", m2.outboxLen(), m2.groupCount())
	}
}

func TestSetRouteKeepsPendingOfRemainingReceivers(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	a, b := fs.get("a"), fs.get("b")
	a.setFail(-1)
	b.setFail(-1)
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a", "b")); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "two pending", func() bool { s := mustStatus(t, m, "r"); return s.Pending == 2 && s.Failed >= 2 })
	// b leaves, c arrives, a moves to index 1 and works now.
	c := fs.get("c")
	a.setFail(0)
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "c", "a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a delivered", func() bool { return a.count() == 1 && mustStatus(t, m, "r").Pending == 0 })
	if c.count() != 0 {
		t.Errorf("new receiver got %d old notifications", c.count())
	}
	s := mustStatus(t, m, "r")
	if len(s.Receivers) != 2 || s.Receivers[0].Name != "fake:c" || s.Receivers[1].Name != "fake:a" || !s.Receivers[1].Healthy {
		t.Errorf("receivers %+v", s.Receivers)
	}
}

func TestAssignReceivers(t *testing.T) {
	r := &route{receivers: []*slot{{typ: "email", hash: "e2"}, {typ: "webhook", hash: "w1"}, {typ: "log", hash: "l1"}}}
	got := assignReceivers(r, []recvRef{
		{index: 0, typ: "webhook", hash: "w1"}, // moved to 1
		{index: 1, typ: "webhook", hash: "w2"}, // changed webhook at 1, but 1 is taken
		{index: 0, typ: "email", hash: "e1"},   // corrected email at 0
		{index: 2, typ: "exec", hash: "x1"},    // gone
	})
	want := []int{1, -1, 0, -1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("assignReceivers = %v, want %v", got, want)
		}
	}
}

func TestBrokenReceiver(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a", "bad:x"))
	if err == nil {
		t.Fatal("SetRoute with a broken receiver did not fail")
	}
	s := mustStatus(t, m, "r")
	if len(s.Receivers) != 2 || !s.Receivers[0].Healthy || s.Receivers[1].Healthy || s.Receivers[1].LastError == "" || s.Phase() != v1alpha1.AlertRouteDegraded {
		t.Fatalf("status %+v", s)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "delivery through the working receiver", func() bool { return fs.get("a").count() == 1 })
	eventually(t, "failing attempts of the broken one", func() bool { s := mustStatus(t, m, "r"); return s.Failed >= 1 && s.Pending == 1 })
	// Fixed: the pending notification goes to the corrected receiver.
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a", "b")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery through the fixed receiver", func() bool { return fs.get("b").count() == 1 })
	eventually(t, "ready", func() bool { return mustStatus(t, m, "r").Phase() == v1alpha1.AlertRouteReady })
}

func TestAlertsFiringBeforeRouteIsSet(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery", func() bool { return fs.get("a").count() == 1 })
	// A new match that excludes the announced alert resolves it for the
	// receivers that heard it fire, then forgets the group.
	spec := routeSpec(10*time.Millisecond, time.Hour, true, "a")
	spec.Match.Kinds = []string{"Process"}
	if err := m.SetRoute("r", spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "resolution after the match changed", func() bool {
		ns := fs.get("a").notifications()
		return len(ns) == 2 && ns[1].Status == "resolved"
	})
	eventually(t, "group forgotten", func() bool { return m.groupCount() == 0 })
}

func TestMetricsAndStatusCallback(t *testing.T) {
	fs := newFakes()
	reg := prometheus.NewRegistry()
	o := testOptions(fs, "")
	o.Registerer = reg
	calls := make(chan string, 100)
	o.OnRouteStatus = func(route string) {
		select {
		case calls <- route:
		default:
		}
	}
	m, _ := start(t, o)
	fs.get("a").setFail(1)
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "delivery", func() bool { return mustStatus(t, m, "r").Sent == 1 })
	if v := testutil.ToFloat64(m.sent.WithLabelValues("r", "fake:a", "success")); v != 1 {
		t.Errorf("success = %v", v)
	}
	if v := testutil.ToFloat64(m.sent.WithLabelValues("r", "fake:a", "failure")); v != 1 {
		t.Errorf("failure = %v", v)
	}
	if v := testutil.ToFloat64(m.pending.WithLabelValues("r")); v != 0 {
		t.Errorf("pending = %v", v)
	}
	if n, err := testutil.GatherAndCount(reg, "reconciled_alerts_sent_total", "reconciled_alerts_pending"); err != nil || n != 3 {
		t.Errorf("gathered %d series (%v), want 3", n, err)
	}
	select {
	case r := <-calls:
		if r != "r" {
			t.Errorf("OnRouteStatus(%q)", r)
		}
	default:
		t.Error("OnRouteStatus was not called")
	}
	// A second Manager on the same registry fails cleanly.
	if _, err := New(Options{Registerer: reg}); err == nil {
		t.Error("registering the metrics twice did not fail")
	}
}

func TestPendingGauge(t *testing.T) {
	fs := newFakes()
	m, _ := start(t, testOptions(fs, ""))
	fs.get("a").setFail(-1)
	if err := m.SetRoute("r", routeSpec(10*time.Millisecond, time.Hour, true, "a")); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	m.Set(newAlert("Link", "other", "LinkDown"))
	eventually(t, "two pending", func() bool { return testutil.ToFloat64(m.pending.WithLabelValues("r")) == 2 })
	fs.get("a").setFail(0)
	eventually(t, "none pending", func() bool { return testutil.ToFloat64(m.pending.WithLabelValues("r")) == 0 })
}

func TestCorruptStateIsSetAside(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/"+OutboxFile, "{not json"); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{StateDir: dir})
	if err != nil {
		t.Fatalf("New with a corrupt outbox: %v", err)
	}
	if m.outboxLen() != 0 {
		t.Error("entries from a corrupt outbox")
	}
	if !fileExists(dir + "/" + OutboxFile + ".corrupt") {
		t.Error("corrupt outbox not set aside")
	}
}

func TestHungReceiverDoesNotTakeEveryWorker(t *testing.T) {
	fs := newFakes()
	o := testOptions(fs, "")
	o.Workers = 2
	m, _ := start(t, o)
	hung := fs.get("hung")
	hung.block = make(chan struct{})
	if err := m.SetRoute("hung", routeSpec(10*time.Millisecond, time.Hour, true, "hung")); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []string{"a", "b", "c", "d"} {
		m.Set(newAlert("Link", obj, "LinkDown"))
	}
	eventually(t, "hung receiver busy", func() bool { n, _ := hung.attemptLog(); return len(n) >= 1 })
	if err := m.SetRoute("up", routeSpec(10*time.Millisecond, time.Hour, true, "up")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deliveries through the other route", func() bool { return fs.get("up").count() == 4 })
	if n, _ := hung.attemptLog(); len(n) != 1 {
		t.Errorf("%d deliveries to the hung receiver in flight, want 1", len(n))
	}
	close(hung.block)
	eventually(t, "hung receiver delivered", func() bool { return hung.count() == 4 })
}
