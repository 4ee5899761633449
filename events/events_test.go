// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package events

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := NewStore(o)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// call is one Eventf, after advancing the clock by step.
type call struct {
	step                            time.Duration
	kind, name, typ, reason, format string
	args                            []any
}

func replay(c *fakeClock, r Recorder, calls []call) {
	for _, cl := range calls {
		c.Step(cl.step)
		r.Eventf(cl.kind, cl.name, cl.typ, cl.reason, cl.format, cl.args...)
	}
}

var ignoreName = cmpopts.IgnoreFields(Event{}, "Name")

func messages(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}

func TestAggregation(t *testing.T) {
	five := make([]call, 5)
	for i := range five {
		five[i] = call{step: time.Minute, kind: "Link", name: "uplink", typ: TypeWarning, reason: "Flapping", format: "carrier lost"}
	}
	five[0].step = 0
	tests := []struct {
		name  string
		calls []call
		want  []Event
	}{{
		name:  "same event 5 times",
		calls: five,
		want: []Event{{
			Kind: "Link", ObjectName: "uplink", Type: TypeWarning, Reason: "Flapping", Message: "carrier lost",
			Source: "reconciled", FirstTimestamp: at(0), LastTimestamp: at(4 * time.Minute), Count: 5,
		}},
	}, {
		name: "different messages, reasons, types and objects",
		calls: []call{
			{kind: "Process", name: "web", typ: TypeNormal, reason: "Started", format: "pid %d", args: []any{10}},
			{step: time.Second, kind: "Process", name: "web", typ: TypeNormal, reason: "Started", format: "pid %d", args: []any{11}},
			{step: time.Second, kind: "Process", name: "web", typ: TypeNormal, reason: "Restarted", format: "pid 11"},
			{step: time.Second, kind: "Process", name: "web", typ: TypeWarning, reason: "Restarted", format: "pid 11"},
			{step: time.Second, kind: "Process", name: "db", typ: TypeWarning, reason: "Restarted", format: "pid 11"},
			{step: time.Second, kind: "Module", name: "web", typ: TypeWarning, reason: "Restarted", format: "pid 11"},
			{step: time.Second, kind: "Process", name: "web", typ: TypeNormal, reason: "Started", format: "pid %d", args: []any{10}},
		},
		want: []Event{
			{Kind: "Process", ObjectName: "web", Type: TypeNormal, Reason: "Started", Message: "pid 11", Source: "reconciled", FirstTimestamp: at(1 * time.Second), LastTimestamp: at(1 * time.Second), Count: 1},
			{Kind: "Process", ObjectName: "web", Type: TypeNormal, Reason: "Restarted", Message: "pid 11", Source: "reconciled", FirstTimestamp: at(2 * time.Second), LastTimestamp: at(2 * time.Second), Count: 1},
			{Kind: "Process", ObjectName: "web", Type: TypeWarning, Reason: "Restarted", Message: "pid 11", Source: "reconciled", FirstTimestamp: at(3 * time.Second), LastTimestamp: at(3 * time.Second), Count: 1},
			{Kind: "Process", ObjectName: "db", Type: TypeWarning, Reason: "Restarted", Message: "pid 11", Source: "reconciled", FirstTimestamp: at(4 * time.Second), LastTimestamp: at(4 * time.Second), Count: 1},
			{Kind: "Module", ObjectName: "web", Type: TypeWarning, Reason: "Restarted", Message: "pid 11", Source: "reconciled", FirstTimestamp: at(5 * time.Second), LastTimestamp: at(5 * time.Second), Count: 1},
			{Kind: "Process", ObjectName: "web", Type: TypeNormal, Reason: "Started", Message: "pid 10", Source: "reconciled", FirstTimestamp: at(0), LastTimestamp: at(6 * time.Second), Count: 2},
		},
	}, {
		name: "message without args is verbatim, empty type is Normal, sub-second times are cut",
		calls: []call{
			{step: 300 * time.Millisecond, kind: "PiNode", name: "pi1", reason: "DiskPressure", format: "100% full"},
			{step: 300 * time.Millisecond, kind: "PiNode", name: "pi1", typ: TypeNormal, reason: "DiskPressure", format: "100% full"},
		},
		want: []Event{{
			Kind: "PiNode", ObjectName: "pi1", Type: TypeNormal, Reason: "DiskPressure", Message: "100% full",
			Source: "reconciled", FirstTimestamp: at(0), LastTimestamp: at(0), Count: 2,
		}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			s := newStore(t, Options{Source: "reconciled", Clock: c.Now})
			replay(c, s, tc.calls)
			if diff := cmp.Diff(tc.want, s.List("", ""), ignoreName); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSource(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Source: "reconciled", Clock: c.Now})
	s.Eventf("Link", "a", TypeNormal, "Up", "up")
	s.ForSource("link-controller").Eventf("Link", "b", TypeNormal, "Up", "up")
	s.ForSource("link-controller").Eventf("Link", "a", TypeNormal, "Up", "up")
	got := map[string]string{}
	for _, e := range s.List("Link", "") {
		got[e.ObjectName] = e.Source
	}
	want := map[string]string{"a": "link-controller", "b": "link-controller"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	s.Eventf("Link", "b", TypeNormal, "Down", "down")
	if got := s.List("Link", "b")[1].Source; got != "reconciled" {
		t.Errorf("Store.Eventf source = %q, want reconciled", got)
	}
}

func TestEventName(t *testing.T) {
	dns := regexp.MustCompile(`^[a-z0-9.-]+$`)
	tests := []struct {
		kind, name, typ, reason, msg string
		prefix                       string
	}{
		{"Link", "uplink", TypeNormal, "Up", "carrier", "link.uplink."},
		{"AlertRoute", "ops-team", TypeWarning, "SendFailed", "smtp: 550", "alertroute.ops-team."},
		{"Module", "Foo_Bar", TypeNormal, "Loaded", "ok", "module.foo-bar."},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		n := eventName(tc.kind, tc.name, tc.typ, tc.reason, tc.msg)
		if !strings.HasPrefix(n, tc.prefix) || !dns.MatchString(n) {
			t.Errorf("eventName(%q, %q) = %q, want prefix %q and [a-z0-9.-]", tc.kind, tc.name, n, tc.prefix)
		}
		if again := eventName(tc.kind, tc.name, tc.typ, tc.reason, tc.msg); again != n {
			t.Errorf("eventName not stable: %q then %q", n, again)
		}
		seen[n] = true
	}
	// Names that map to the same DNS-ish form stay distinct.
	for _, name := range []string{"foo-bar", "Foo-Bar", "foo_bar"} {
		n := eventName("Module", name, TypeNormal, "Loaded", "ok")
		if seen[n] {
			t.Errorf("eventName(Module, %q) = %q collides", name, n)
		}
		seen[n] = true
	}
	// And are kept apart by the store.
	c := newClock()
	s := newStore(t, Options{Clock: c.Now})
	s.Eventf("Module", "Foo", TypeNormal, "Loaded", "ok")
	s.Eventf("Module", "foo", TypeNormal, "Loaded", "ok")
	if got := len(s.List("Module", "")); got != 2 {
		t.Errorf("events for Module/Foo and Module/foo = %d, want 2", got)
	}
}

func TestMessageTruncated(t *testing.T) {
	s := newStore(t, Options{})
	s.Eventf("Link", "a", TypeWarning, "Failed", "%s", strings.Repeat("é", MaxMessageLen))
	m := s.List("", "")[0].Message
	if len(m) > MaxMessageLen || !utf8.ValidString(m) || !strings.HasSuffix(m, "é...") {
		t.Errorf("message of %d bytes (valid UTF-8 %v) ending %q, want at most %d ending \"é...\"",
			len(m), utf8.ValidString(m), m[len(m)-8:], MaxMessageLen)
	}
}

func TestListOrderAndFilter(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Clock: c.Now})
	replay(c, s, []call{
		{kind: "Link", name: "a", typ: TypeNormal, reason: "Up", format: "a1"},
		{step: time.Second, kind: "Process", name: "a", typ: TypeNormal, reason: "Started", format: "p1"},
		{step: time.Second, kind: "Link", name: "b", typ: TypeNormal, reason: "Up", format: "b1"},
		{step: time.Second, kind: "Link", name: "a", typ: TypeWarning, reason: "Down", format: "a2"},
		{kind: "Link", name: "a", typ: TypeNormal, reason: "Up", format: "a3"},                    // same second: recording order
		{step: time.Second, kind: "Link", name: "a", typ: TypeNormal, reason: "Up", format: "a1"}, // repeat moves it last
	})
	tests := []struct {
		kind, name string
		want       []string
	}{
		{"", "", []string{"p1", "b1", "a2", "a3", "a1"}},
		{"Link", "", []string{"b1", "a2", "a3", "a1"}},
		{"Link", "a", []string{"a2", "a3", "a1"}},
		{"Process", "", []string{"p1"}},
		{"Process", "a", []string{"p1"}},
		{"Link", "c", []string{}},
		{"Module", "", []string{}},
		{"link", "a", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, messages(s.List(tc.kind, tc.name))); diff != "" {
				t.Errorf("List(%q, %q) (-want +got):\n%s", tc.kind, tc.name, diff)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	distinct := func(kind, name string, from, to int, step time.Duration) []call {
		var cs []call
		for i := from; i < to; i++ {
			// A reason each: distinct events with one reason would be
			// combined (TestCombinesSimilarEvents).
			cs = append(cs, call{step: step, kind: kind, name: name, typ: TypeNormal, reason: fmt.Sprintf("R%d", i), format: "m%d", args: []any{i}})
		}
		return cs
	}
	rng := func(prefix string, from, to int) []string {
		out := []string{}
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("%sm%d", prefix, i))
		}
		return out
	}
	tests := []struct {
		name      string
		maxEvents int
		calls     []call
		kind      string
		objName   string
		want      []string
		wantTotal int
	}{{
		name:      "MaxEvents keeps the newest",
		maxEvents: 10,
		calls:     distinct("Link", "a", 0, 15, time.Second),
		kind:      "Link",
		objName:   "a",
		want:      rng("", 5, 15),
		wantTotal: 10,
	}, {
		name:      "MaxEvents within one second keeps the last recorded",
		maxEvents: 10,
		calls:     distinct("Link", "a", 0, 15, 0),
		kind:      "Link",
		objName:   "a",
		want:      rng("", 5, 15),
		wantTotal: 10,
	}, {
		name:      "a repeat makes an event new again",
		maxEvents: 3,
		calls: append(distinct("Link", "a", 0, 3, time.Second),
			call{step: time.Second, kind: "Link", name: "a", typ: TypeNormal, reason: "R0", format: "m%d", args: []any{0}},
			call{step: time.Second, kind: "Link", name: "a", typ: TypeNormal, reason: "R3", format: "m%d", args: []any{3}}),
		kind:      "Link",
		objName:   "a",
		want:      []string{"m2", "m0", "m3"},
		wantTotal: 3,
	}, {
		name: "per object",
		calls: append(append(distinct("Link", "b", 0, 1, time.Second),
			distinct("Link", "a", 0, MaxEventsPerObject+5, time.Second)...),
			distinct("Link", "b", 1, 2, time.Second)...),
		kind:      "Link",
		objName:   "a",
		want:      rng("", 5, MaxEventsPerObject+5),
		wantTotal: MaxEventsPerObject + 2,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			path := filepath.Join(t.TempDir(), "events.json")
			s := newStore(t, Options{Path: path, MaxEvents: tc.maxEvents, Clock: c.Now})
			replay(c, s, tc.calls)
			if diff := cmp.Diff(tc.want, messages(s.List(tc.kind, tc.objName))); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
			if got := len(s.List("", "")); got != tc.wantTotal {
				t.Errorf("total events = %d, want %d", got, tc.wantTotal)
			}
			if got := s.kv.Len(); got != tc.wantTotal {
				t.Errorf("stored events = %d, want %d", got, tc.wantTotal)
			}
		})
	}
}

func TestBoundsOnOpen(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "events.json")
	s := newStore(t, Options{Path: path, Clock: c.Now})
	for i := range 8 {
		c.Step(time.Second)
		s.Eventf("Link", "a", TypeNormal, fmt.Sprintf("R%d", i), "m%d", i)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, Options{Path: path, MaxEvents: 3, Clock: c.Now})
	if diff := cmp.Diff([]string{"m5", "m6", "m7"}, messages(s.List("", ""))); diff != "" {
		t.Errorf("List after reopening with MaxEvents 3 (-want +got):\n%s", diff)
	}
	if got := s.kv.Len(); got != 3 {
		t.Errorf("stored events = %d, want 3", got)
	}
}

func TestMaxAge(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{MaxAge: time.Hour, Clock: c.Now})
	steps := []struct {
		step      time.Duration
		msg       string // recorded when not empty
		wantList  []string
		wantKept  int // events in memory, expired or not
		wantPrune bool
	}{
		{0, "old", []string{"old"}, 1, false},
		{59*time.Minute + 30*time.Second, "mid", []string{"old", "mid"}, 2, true},
		// old has expired: hidden at once, dropped by the next prune.
		{40 * time.Second, "", []string{"mid"}, 2, false},
		{0, "new1", []string{"mid", "new1"}, 3, false}, // less than a minute since the last prune
		{21 * time.Second, "", []string{"mid", "new1"}, 3, false},
		{0, "new1", []string{"mid", "new1"}, 3, false}, // a repeat does not prune
		{0, "new2", []string{"mid", "new1", "new2"}, 3, true},
		{time.Hour, "", []string{"new1", "new2"}, 3, false}, // mid expired
	}
	for i, st := range steps {
		c.Step(st.step)
		before := s.lastPrune
		if st.msg != "" {
			s.Eventf("Link", "a", TypeNormal, "R", "%s", st.msg)
		}
		if diff := cmp.Diff(st.wantList, messages(s.List("", ""))); diff != "" {
			t.Errorf("step %d: List (-want +got):\n%s", i, diff)
		}
		s.mu.Lock()
		kept, pruned := len(s.byName), !s.lastPrune.Equal(before)
		s.mu.Unlock()
		if kept != st.wantKept || pruned != st.wantPrune {
			t.Errorf("step %d: kept %d events, pruned %v; want %d, %v", i, kept, pruned, st.wantKept, st.wantPrune)
		}
	}
}

func TestMaxAgeOnOpen(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "events.json")
	s := newStore(t, Options{Path: path, Clock: c.Now})
	s.Eventf("Link", "a", TypeNormal, "R", "old")
	c.Step(time.Hour)
	s.Eventf("Link", "a", TypeNormal, "R", "new")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.Step(DefaultMaxAge - 30*time.Minute)
	s = newStore(t, Options{Path: path, Clock: c.Now})
	if diff := cmp.Diff([]string{"new"}, messages(s.List("", ""))); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
	if got := s.kv.Len(); got != 1 {
		t.Errorf("stored events = %d, want 1", got)
	}
}

func TestPersistence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool
	}{{"close", false}, {"crash", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			path := filepath.Join(t.TempDir(), "state", "events.json")
			s, err := NewStore(Options{Path: path, MaxEvents: 4, Source: "reconciled", Clock: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			lr := s.ForSource("link-controller")
			replay(c, lr, []call{
				{kind: "Link", name: "a", typ: TypeWarning, reason: "Flapping", format: "carrier lost"},
				{step: time.Minute, kind: "Link", name: "a", typ: TypeWarning, reason: "Flapping", format: "carrier lost"},
				{step: time.Second, kind: "Link", name: "b", typ: TypeNormal, reason: "Up", format: "up"},
				{step: time.Second, kind: "Module", name: "m", typ: TypeNormal, reason: "Loaded", format: "loaded"},
				{step: time.Second, kind: "Process", name: "p", typ: TypeNormal, reason: "Started", format: "pid %d", args: []any{42}},
				{step: time.Second, kind: "Process", name: "p", typ: TypeNormal, reason: "Started", format: "pid %d", args: []any{43}},
				{step: time.Second, kind: "Process", name: "q", typ: TypeNormal, reason: "Started", format: "pid 1"},
				{kind: "Link", name: "a", typ: TypeWarning, reason: "Flapping", format: "carrier lost"},
			})
			s.Forget("Process", "q")
			want := s.List("", "")
			if len(want) != 3 {
				t.Fatalf("before restart: %d events, want 3: %v", len(want), messages(want))
			}
			if !tc.crash {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// After a crash the old store is abandoned as it is.
			s2 := newStore(t, Options{Path: path, MaxEvents: 3, Source: "reconciled", Clock: c.Now})
			if diff := cmp.Diff(want, s2.List("", "")); diff != "" {
				t.Errorf("List after restart (-want +got):\n%s", diff)
			}
			// Aggregation, ordering and bounds carry on: [p42, p43, a] become
			// [a, p42, b], dropping p43.
			c.Step(time.Minute)
			s2.ForSource("link-controller").Eventf("Link", "a", TypeWarning, "Flapping", "carrier lost")
			s2.Eventf("Process", "p", TypeNormal, "Started", "pid 42")
			s2.Eventf("Link", "b", TypeNormal, "Up", "up")
			now := metav1.NewTime(c.Now())
			a, p42 := want[2], want[0]
			a.Count, a.LastTimestamp = 2, now
			p42.Count, p42.LastTimestamp, p42.Source = 2, now, "reconciled"
			b := Event{
				Name: eventName("Link", "b", TypeNormal, "Up", "up"), Kind: "Link", ObjectName: "b", Type: TypeNormal, Reason: "Up",
				Message: "up", Source: "reconciled", FirstTimestamp: now, LastTimestamp: now, Count: 1,
			}
			if diff := cmp.Diff([]Event{a, p42, b}, s2.List("", "")); diff != "" {
				t.Errorf("List after more events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCorruptStoreSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, []byte(`{"link.a.x": {`), 0o600); err != nil {
		t.Fatal(err)
	}
	var errs []error
	s := newStore(t, Options{Path: path, OnError: func(err error) { errs = append(errs, err) }})
	if got := len(s.List("", "")); got != 0 || len(errs) != 1 {
		t.Errorf("got %d events and errors %v, want 0 events and 1 error", got, errs)
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Errorf("corrupt store not set aside: %v", err)
	}
	s.Eventf("Link", "a", TypeNormal, "Up", "up")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, Options{Path: path})
	if diff := cmp.Diff([]string{"up"}, messages(s.List("", ""))); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
}

// receive returns the events buffered in ch, and whether ch was closed.
func receive(ch <-chan Event) (evs []Event, closed bool) {
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return evs, true
			}
			evs = append(evs, e)
		default:
			return evs, false
		}
	}
}

func TestWatch(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Source: "reconciled", Clock: c.Now})
	s.Eventf("Link", "a", TypeNormal, "Up", "before the watch")
	ch, stop := s.Watch()
	s.Eventf("Link", "a", TypeWarning, "Down", "carrier lost")
	c.Step(time.Minute)
	s.Eventf("Link", "a", TypeWarning, "Down", "carrier lost")
	got, closed := receive(ch)
	want := []Event{
		{Kind: "Link", ObjectName: "a", Type: TypeWarning, Reason: "Down", Message: "carrier lost", Source: "reconciled", FirstTimestamp: at(0), LastTimestamp: at(0), Count: 1},
		{Kind: "Link", ObjectName: "a", Type: TypeWarning, Reason: "Down", Message: "carrier lost", Source: "reconciled", FirstTimestamp: at(0), LastTimestamp: at(time.Minute), Count: 2},
	}
	if diff := cmp.Diff(want, got, ignoreName); diff != "" || closed {
		t.Errorf("watched (closed %v) (-want +got):\n%s", closed, diff)
	}
	if len(got) == 2 && got[0].Name != got[1].Name {
		t.Errorf("an update has another name: %q, %q", got[0].Name, got[1].Name)
	}
	stop()
	stop()
	s.Eventf("Link", "a", TypeNormal, "Up", "after the watch")
	if got, closed := receive(ch); len(got) != 0 || !closed {
		t.Errorf("after stop: got %v, closed %v; want nothing, closed", got, closed)
	}

	// A watcher that falls behind is dropped; others are not.
	slow, stopSlow := s.Watch()
	defer stopSlow()
	fast, stopFast := s.Watch()
	defer stopFast()
	var fastGot []Event
	for i := range WatchBuffer + 1 {
		s.Eventf("Process", "p", TypeNormal, "Tick", "tick %d", i)
		evs, closed := receive(fast)
		if closed {
			t.Fatalf("fast watcher closed after %d events", i)
		}
		fastGot = append(fastGot, evs...)
	}
	if len(fastGot) != WatchBuffer+1 {
		t.Errorf("fast watcher got %d events, want %d", len(fastGot), WatchBuffer+1)
	}
	if got, closed := receive(slow); len(got) != WatchBuffer || !closed {
		t.Errorf("slow watcher got %d events, closed %v; want %d, closed", len(got), closed, WatchBuffer)
	}

	// Close ends every watch; a later Watch is closed at once.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closed := receive(fast); !closed {
		t.Error("watch not closed by Close")
	}
	late, stopLate := s.Watch()
	defer stopLate()
	if _, closed := receive(late); !closed {
		t.Error("Watch after Close not closed")
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.json")
	s, err := NewStore(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Eventf("Link", "a", TypeNormal, "Up", "up")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s.Eventf("Link", "a", TypeNormal, "Up", "dropped")
	s = newStore(t, Options{Path: path})
	if diff := cmp.Diff([]string{"up"}, messages(s.List("", ""))); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func TestDescribe(t *testing.T) {
	now := t0.Add(48 * time.Hour)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	tests := []struct {
		name      string
		ev        Event
		wantAge   string
		wantCount string
	}{
		{"once", Event{FirstTimestamp: ago(45 * time.Second), LastTimestamp: ago(45 * time.Second), Count: 1}, "45s", ""},
		{"repeated", Event{FirstTimestamp: ago(4 * time.Minute), LastTimestamp: ago(0), Count: 5}, "0s", "x5 over 4m"},
		{"minutes and seconds", Event{FirstTimestamp: ago(3*time.Minute + 20*time.Second), LastTimestamp: ago(30 * time.Second), Count: 2}, "30s", "x2 over 3m20s"},
		{"hours", Event{FirstTimestamp: ago(26 * time.Hour), LastTimestamp: ago(5*time.Hour + 10*time.Minute), Count: 300}, "5h10m", "x300 over 26h"},
		{"days", Event{FirstTimestamp: ago(47 * time.Hour), LastTimestamp: ago(47 * time.Hour), Count: 1}, "47h", ""},
		{"only first timestamp", Event{FirstTimestamp: ago(90 * time.Second), Count: 1}, "90s", ""},
		{"only last timestamp", Event{LastTimestamp: ago(12 * time.Minute), Count: 3}, "12m", "x3 over 12m"},
		{"no timestamps", Event{Count: 2}, "<unknown>", "x2 over <unknown>"},
		{"in the future", Event{FirstTimestamp: ago(-time.Hour), LastTimestamp: ago(-time.Hour), Count: 1}, "<invalid>", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			age, count := Describe(tc.ev, now)
			if age != tc.wantAge || count != tc.wantCount {
				t.Errorf("Describe = %q, %q; want %q, %q", age, count, tc.wantAge, tc.wantCount)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	const writers, perWriter = 4, 200
	path := filepath.Join(t.TempDir(), "events.json")
	s, err := NewStore(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ch, stop := s.Watch()
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.ForSource(fmt.Sprintf("writer-%d", w))
			for i := range perWriter {
				r.Eventf("Process", fmt.Sprintf("p%d", i%7), TypeNormal, fmt.Sprintf("Tick%d", i%5), "tick %d", i%5)
				if i%50 == 0 {
					s.List("Process", "")
				}
			}
		}()
	}
	wg.Wait()
	stop()
	<-done
	var total int32
	evs := s.List("", "")
	for _, e := range evs {
		total += e.Count
	}
	if total != writers*perWriter || len(evs) != 35 {
		t.Errorf("%d events with a total count of %d, want 35 and %d", len(evs), total, writers*perWriter)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, Options{Path: path})
	if diff := cmp.Diff(evs, s.List("", "")); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
}

// TestCombinesSimilarEvents: distinct events of one object with the same
// reason (a restart's "Started pid N") are combined after MaxSimilar, like
// the kubelet's aggregator, into one event whose count grows and whose
// message is the latest: describe shows "x18 over 2m", not 20 lines.
func TestCombinesSimilarEvents(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Path: filepath.Join(t.TempDir(), "events.json"), Clock: c.Now})
	for i := range 20 {
		c.Step(5 * time.Second)
		s.Eventf("Process", "p", TypeNormal, "Started", "pid %d", 100+i)
	}
	s.Eventf("Process", "p", TypeWarning, "Exited", "exited with status 1")
	s.Eventf("Process", "q", TypeNormal, "Started", "pid 999") // another object: its own
	got := s.List("Process", "p")
	if len(got) != MaxSimilar+2 {
		t.Fatalf("%d events, want %d: %v", len(got), MaxSimilar+2, messages(got))
	}
	combined := got[len(got)-2]
	if combined.Message != CombinedPrefix+"pid 119" || combined.Count != 20-MaxSimilar || combined.Reason != "Started" {
		t.Errorf("combined event %+v", combined)
	}
	if _, text := Describe(combined, c.Now()); text != fmt.Sprintf("x%d over %s", 20-MaxSimilar, "80s") {
		t.Errorf("describe count %q", text)
	}
	// Past the window, distinct events are kept apart again.
	c.Step(SimilarWindow + time.Minute)
	s.Eventf("Process", "p", TypeNormal, "Started", "pid 500")
	if last := s.List("Process", "p"); last[len(last)-1].Message != "pid 500" {
		t.Errorf("after the window: %v", messages(last))
	}
}
