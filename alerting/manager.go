// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package alerting routes alerts to the receivers of AlertRoutes, with
// Alertmanager's grouping semantics and a durable outbox.
//
// Controllers report the state of each alert with Manager.Set: firing while
// EndsAt is zero, resolved otherwise. Every route whose match selects a
// firing alert puts it in a group, one per route and resource (kind and
// object). A group's first notification is due groupWait after its first
// alert fired; an alert that resolves before then (a flap) produces no
// notification at all. After a firing notification, changes (an alert
// starting or resolving) are batched for groupWait, a group that stays
// firing is notified again every repeatInterval, and once every alert is
// resolved a resolved notification is sent (with sendResolved) and the
// group is forgotten. A group therefore never gets more than one
// notification per groupWait.
//
// Each notification gets an ID derived from its route, group and sequence
// number within the group, stable across retries and daemon restarts, so
// that receivers can drop the duplicates that at-least-once delivery
// cannot avoid. For every receiver of the route the notification is written
// to the outbox (a kvlog under the state dir) before the first attempt and
// removed only after the receiver accepted it; failed attempts are retried
// with jittered exponential backoff, for as long as it takes. Firing
// alerts, group states and the routes' counters are persisted as well, so a
// restarted daemon, even after kill -9, delivers what was pending, neither
// forgets a firing alert nor repeats a notification that was accepted.
//
// One goroutine drives all timers (group due times and outbox retries from
// two heaps); deliveries run on a fixed pool of workers.
package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/timerheap"
	"github.com/reconciled/reconciled/kvlog"
)

// Defaults of Options.
const (
	// DefaultRetryBase is the first retry delay of a failed delivery.
	DefaultRetryBase = time.Second
	// DefaultRetryMax caps the retry delay.
	DefaultRetryMax = 5 * time.Minute
	// DefaultWorkers is the number of concurrent deliveries.
	DefaultWorkers = 4
	// DefaultSendTimeout bounds one delivery attempt (receivers have their
	// own, shorter timeouts; this one guards against a receiver that hangs).
	DefaultSendTimeout = 2 * time.Minute

	// defaultGroupWait, defaultRepeatInterval are the AlertRoute defaults,
	// applied when SetRoute gets a spec that was not defaulted.
	defaultGroupWait      = 30 * time.Second
	defaultRepeatInterval = 4 * time.Hour
)

// Names of the state files under Options.StateDir.
const (
	// AlertsFile holds firing alerts, group states and route counters.
	AlertsFile = "alerts.json"
	// OutboxFile holds the notifications not yet accepted by a receiver.
	OutboxFile = "outbox.json"
)

// TestAlertName is the name of the synthetic alert of SendTest.
const TestAlertName = "AlertRouteTest"

// ErrUnknownRoute is returned for a route that has not been set.
var ErrUnknownRoute = errors.New("unknown alert route")

// maxErrorLen bounds the length of a delivery error kept in status.
const maxErrorLen = 512

// Options configures a Manager.
type Options struct {
	// StateDir holds alerts and groups in <StateDir>/alerts.json and the
	// outbox in <StateDir>/outbox.json (kvlog files); "" keeps everything
	// in memory.
	StateDir string
	// Hostname goes into every notification (default os.Hostname()).
	Hostname string
	// Log receives delivery failures, dropped notifications and debug
	// messages (V(1)).
	Log logr.Logger
	// Registerer receives reconciled_alerts_sent_total{route,receiver,result}
	// and reconciled_alerts_pending{route}; nil registers nothing.
	Registerer prometheus.Registerer
	// NewReceiver builds a route's receiver (default: receivers.New with
	// Options{Log: Log}).
	NewReceiver func(spec v1alpha1.Receiver, index int) (receivers.Receiver, error)
	// OnRouteStatus is called, not under any lock, when a route's counters
	// or the health of one of its receivers change.
	OnRouteStatus func(route string)
	// RetryBase and RetryMax shape the delivery backoff: RetryBase *
	// 2^(attempts-1), capped at RetryMax, jittered (defaults 1s and 5m).
	RetryBase, RetryMax time.Duration
	// Workers is the number of concurrent deliveries (default 4).
	Workers int
	// SendTimeout bounds one delivery attempt (default 2m).
	SendTimeout time.Duration
	// AlertmanagerRefresh is how often firing alerts are re-sent to
	// Alertmanager receivers (default 1m, as Prometheus re-sends).
	AlertmanagerRefresh time.Duration
}

// stateRecord is one value of alerts.json: exactly one field is set,
// according to the key's prefix.
type stateRecord struct {
	Alert *receivers.Alert `json:"alert,omitempty"`
	Group *groupState      `json:"group,omitempty"`
	Route *routeRecord     `json:"route,omitempty"`
}

// Key prefixes of alerts.json.
const (
	alertPrefix = "alert/"
	groupPrefix = "group/"
	routePrefix = "route/"
)

// Manager groups alerts per route and delivers notifications through the
// durable outbox. It is safe for concurrent use.
type Manager struct {
	o       Options
	log     logr.Logger
	state   *kvlog.Map[stateRecord]
	outboxK *kvlog.Map[outboxEntry]
	sent    *prometheus.CounterVec
	pending *prometheus.GaugeVec
	wake    chan struct{}

	mu           sync.Mutex
	running      bool
	routes       map[string]*route
	saved        map[string]routeRecord // counters of routes loaded but not set yet
	alerts       map[string]receivers.Alert
	groups       map[string]*group
	byObject     map[string]map[string]*group // kind/object -> group id -> group
	groupHeap    *timerheap.Heap[*group]
	outbox       map[string]*entry
	chains       map[chainKey]*chain
	entryHeap    *timerheap.Heap[*entry]
	pendingCount map[string]int64
	seq          uint64 // next outbox sequence number
	busy         int    // deliveries dispatched and not finished
	recvBusy     map[recvKey]int
	parked       map[recvKey][]*entry // due, waiting for their receiver's in-flight deliveries
	dirty        map[string]struct{}
}

// New opens the state under o.StateDir (if any) and returns a Manager.
// Pending notifications of routes that are not set yet wait for SetRoute.
func New(o Options) (*Manager, error) {
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.AlertmanagerRefresh <= 0 {
		o.AlertmanagerRefresh = time.Minute
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryMax < o.RetryBase {
		o.RetryMax = o.RetryBase
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.NewReceiver == nil {
		log := o.Log
		o.NewReceiver = func(spec v1alpha1.Receiver, index int) (receivers.Receiver, error) {
			return receivers.New(spec, index, receivers.Options{Log: log})
		}
	}
	m := &Manager{
		o:            o,
		groupHeap:    timerheap.New(func(a, b *group) bool { return a.st.Due.Before(b.st.Due) }, func(g *group) *int { return &g.idx }),
		entryHeap:    timerheap.New(func(a, b *entry) bool { return a.e.NextAttempt.Before(b.e.NextAttempt) }, func(e *entry) *int { return &e.idx }),
		log:          o.Log,
		wake:         make(chan struct{}, 1),
		routes:       map[string]*route{},
		saved:        map[string]routeRecord{},
		alerts:       map[string]receivers.Alert{},
		groups:       map[string]*group{},
		byObject:     map[string]map[string]*group{},
		outbox:       map[string]*entry{},
		chains:       map[chainKey]*chain{},
		pendingCount: map[string]int64{},
		recvBusy:     map[recvKey]int{},
		parked:       map[recvKey][]*entry{},
		dirty:        map[string]struct{}{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconciled_alerts_sent_total",
			Help: "Alert notification delivery attempts, by route, receiver and result (success or failure).",
		}, []string{"route", "receiver", "result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_alerts_pending",
			Help: "Alert notifications in the outbox not yet accepted by their receiver, by route.",
		}, []string{"route"}),
	}
	var statePath, outboxPath string
	if o.StateDir != "" {
		statePath = filepath.Join(o.StateDir, AlertsFile)
		outboxPath = filepath.Join(o.StateDir, OutboxFile)
	}
	var err error
	if m.state, err = openKV[stateRecord](statePath, m.log); err != nil {
		return nil, err
	}
	if m.outboxK, err = openKV[outboxEntry](outboxPath, m.log); err != nil {
		m.state.Close()
		return nil, err
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{m.sent, m.pending} {
			if err := o.Registerer.Register(c); err != nil {
				m.state.Close()
				m.outboxK.Close()
				return nil, fmt.Errorf("alerting: register metrics: %w", err)
			}
		}
	}
	m.load()
	return m, nil
}

// openKV opens a kvlog; a corrupt file is set aside as path+".corrupt"
// (and logged) so that the daemon still starts.
func openKV[V any](path string, log logr.Logger) (*kvlog.Map[V], error) {
	kv, err := kvlog.OpenOrSetAside[V](path, func(err error) { log.Error(err, "alerting: state file was corrupt") })
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	kv.OnError = func(err error) { log.Error(err, "alerting: persisting state") }
	return kv, nil
}

// load reads the persisted alerts, groups, counters and outbox entries.
// Groups and entries are scheduled once their route is set.
func (m *Manager) load() {
	m.state.Range(func(key string, r stateRecord) {
		if _, ok := strings.CutPrefix(key, alertPrefix); ok && r.Alert != nil {
			m.alerts[r.Alert.Fingerprint] = *r.Alert
			return
		}
		if id, ok := strings.CutPrefix(key, groupPrefix); ok && r.Group != nil {
			st := *r.Group
			// The kvlog keeps its value: the map must not be shared.
			st.Alerts = maps.Clone(st.Alerts)
			if st.Alerts == nil {
				st.Alerts = map[string]groupAlert{}
			}
			g := &group{id: groupID(st.Route, st.Kind, st.Object), st: st, idx: -1}
			if id == g.id {
				m.addGroupLocked(g)
				return
			}
		}
		if name, ok := strings.CutPrefix(key, routePrefix); ok && r.Route != nil {
			m.saved[name] = *r.Route
			return
		}
		m.state.Delete(key)
	})
	now := time.Now()
	m.outboxK.Range(func(key string, e outboxEntry) {
		// A restart is a good moment to try again at once.
		if e.NextAttempt.After(now) {
			e.NextAttempt = now
		}
		m.outbox[key] = &entry{key: key, e: e, idx: -1}
		m.pendingCount[e.Notification.Route]++
		if e.Seq >= m.seq {
			m.seq = e.Seq + 1
		}
	})
	for r, n := range m.pendingCount {
		m.pending.WithLabelValues(r).Set(float64(n))
	}
}

// Close compacts and closes the state files. Call it after Run returned;
// the Manager must not be used afterwards.
func (m *Manager) Close() error {
	return errors.Join(m.state.Close(), m.outboxK.Close())
}

// Set records the current state of one alert, identified by its
// Fingerprint (derived from name, kind and object when empty): firing when
// EndsAt is zero, resolved otherwise. Unchanged repeats are cheap no-ops.
func (m *Manager) Set(a receivers.Alert) {
	if a.Fingerprint == "" {
		a.Fingerprint = receivers.Fingerprint(a.Name, a.Kind, a.Object)
	}
	a.Labels = maps.Clone(a.Labels)
	m.mu.Lock()
	changed := m.setLocked(a, time.Now())
	m.mu.Unlock()
	if changed {
		m.poke()
	}
}

// setLocked applies a to the firing set and to the groups; it reports
// whether anything changed.
func (m *Manager) setLocked(a receivers.Alert, now time.Time) bool {
	fp := a.Fingerprint
	firing := a.Firing()
	old, had := m.alerts[fp]
	switch {
	case firing && had && sameAlert(old, a):
		return false
	case firing:
		m.alerts[fp] = a
		m.state.Put(alertPrefix+fp, stateRecord{Alert: &a})
	case had:
		delete(m.alerts, fp)
		m.state.Delete(alertPrefix + fp)
	}
	changed := firing || had
	targets := map[string]*group{}
	for id, g := range m.byObject[objectKey(a.Kind, a.Object)] {
		if _, in := g.st.Alerts[fp]; in {
			targets[id] = g
		}
	}
	if firing {
		for _, r := range m.routes {
			if !r.match.matches(a) {
				continue
			}
			id := groupID(r.name, a.Kind, a.Object)
			g := m.groups[id]
			if g == nil {
				g = m.newGroupLocked(r, a.Kind, a.Object, now)
			}
			targets[id] = g
		}
	}
	for _, g := range targets {
		if m.updateGroupLocked(g, a, now) {
			changed = true
		}
	}
	return changed
}

// Alerts returns the alerts that are currently firing, sorted by kind,
// object and name.
func (m *Manager) Alerts() []receivers.Alert {
	m.mu.Lock()
	out := make([]receivers.Alert, 0, len(m.alerts))
	for _, a := range m.alerts {
		a.Labels = maps.Clone(a.Labels)
		out = append(out, a)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Fingerprint < b.Fingerprint
	})
	return out
}

// job is one delivery attempt handed to a worker.
type job struct {
	key      string
	route    string
	rk       recvKey
	receiver string
	rcv      receivers.Receiver
	n        receivers.Notification
}

// Start drives the group timers and the outbox retries, with
// Options.Workers delivery workers, until ctx is done; it blocks.
// Deliveries in flight are cancelled and stay in the outbox. It returns an
// error only when it is already running.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("alerting: the manager is already running")
	}
	m.running = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.running = false
		m.mu.Unlock()
	}()

	work := make(chan job, m.o.Workers)
	var wg sync.WaitGroup
	for range m.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				m.deliver(ctx, j)
			}
		}()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		jobs, next := m.tick(time.Now())
		for _, j := range jobs {
			work <- j // never blocks: busy <= Workers = cap(work)
		}
		m.notifyDirty()
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-ctx.Done():
			close(work)
			wg.Wait()
			m.notifyDirty()
			return nil
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// tick flushes the groups that are due and dispatches the outbox entries
// that are due (as many as there are free workers). It returns the jobs
// and when it wants to run next (zero: only on a wake-up).
func (m *Manager) tick(now time.Time) ([]job, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		g, ok := m.groupHeap.Peek()
		if !ok || g.st.Due.After(now) {
			break
		}
		m.groupHeap.Pop()
		if r := m.routes[g.st.Route]; r != nil {
			m.flushLocked(g, r, now)
		}
	}
	var jobs []job
	for m.busy < m.o.Workers {
		e, ok := m.entryHeap.Peek()
		if !ok || e.e.NextAttempt.After(now) {
			break
		}
		m.entryHeap.Pop()
		r := m.routes[e.e.Notification.Route]
		if r == nil || e.e.Receiver < 0 || e.e.Receiver >= len(r.receivers) {
			continue // not scheduled: SetRoute reschedules it
		}
		sl := r.receivers[e.e.Receiver]
		rk := recvKey{route: r.name, receiver: e.e.Receiver}
		if m.recvBusy[rk] >= m.receiverLimit(sl) {
			// Wait for this receiver's deliveries in flight, so that a
			// receiver that hangs cannot take every worker.
			if !e.parked {
				e.parked = true
				m.parked[rk] = append(m.parked[rk], e)
			}
			continue
		}
		e.inflight = true
		m.busy++
		m.recvBusy[rk]++
		jobs = append(jobs, job{key: e.key, route: r.name, rk: rk, receiver: sl.name, rcv: sl.rcv, n: e.e.Notification})
	}
	var next time.Time
	if g, ok := m.groupHeap.Peek(); ok {
		next = g.st.Due
	}
	if e, ok := m.entryHeap.Peek(); ok && m.busy < m.o.Workers {
		if next.IsZero() || e.e.NextAttempt.Before(next) {
			next = e.e.NextAttempt
		}
	}
	return jobs, next
}

// poke wakes the timer goroutine.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// sameAlert compares two alerts by their JSON encoding (times compare by
// instant and zone offset, labels by content).
func sameAlert(a, b receivers.Alert) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
