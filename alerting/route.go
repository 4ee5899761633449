// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// route is a route that is set.
type route struct {
	name         string
	match        matcher
	groupWait    time.Duration
	repeat       time.Duration
	sendResolved bool
	receivers    []*slot
	sent, failed int64
}

// Receiver types, as in slot.typ.
const typeAlertmanager = "alertmanager"

// has reports whether the route has a receiver of the type.
func (r *route) has(typ string) bool {
	for _, s := range r.receivers {
		if s.typ == typ {
			return true
		}
	}
	return false
}

// slot is one receiver of a route.
type slot struct {
	rcv    receivers.Receiver
	name   string
	typ    string // email, webhook, ...
	hash   string // of the receiver's spec
	status ReceiverStatus
}

// routeRecord is a route's persisted counters and receiver health.
type routeRecord struct {
	Sent      int64            `json:"sent,omitempty"`
	Failed    int64            `json:"failed,omitempty"`
	Receivers []receiverRecord `json:"receivers,omitempty"`
}

type receiverRecord struct {
	Type   string         `json:"type"`
	Hash   string         `json:"hash"`
	Status ReceiverStatus `json:"status"`
}

// brokenReceiver stands in for a receiver that could not be built: its
// deliveries fail (and are retried) until SetRoute gets a spec that builds.
type brokenReceiver struct {
	name string
	err  error
}

func (b brokenReceiver) Name() string { return b.name }

func (b brokenReceiver) Send(context.Context, receivers.Notification) error {
	return fmt.Errorf("receiver not usable: %w", b.err)
}

func receiverType(s v1alpha1.Receiver) string {
	switch {
	case s.Email != nil:
		return "email"
	case s.Webhook != nil:
		return "webhook"
	case s.Alertmanager != nil:
		return "alertmanager"
	case s.Exec != nil:
		return "exec"
	case s.Log != nil:
		return "log"
	}
	return "unknown"
}

func receiverHash(s v1alpha1.Receiver) string {
	b, _ := json.Marshal(s)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// SetRoute adds or replaces a route. Its receivers are rebuilt; pending
// deliveries continue with the receiver that has the same spec (or the
// same type at the same index) and are dropped for receivers that no
// longer exist. Firing alerts are matched again. A receiver that cannot be
// built is reported in the error and in its status, and its deliveries
// wait (failing) for a spec that builds; the rest of the route works.
func (m *Manager) SetRoute(name string, spec v1alpha1.AlertRouteSpec) error {
	if name == "" {
		return errors.New("alerting: set route: empty name")
	}
	r := &route{
		name:         name,
		match:        newMatcher(spec.Match),
		groupWait:    defaultGroupWait,
		repeat:       defaultRepeatInterval,
		sendResolved: true,
	}
	if spec.GroupWait != nil && spec.GroupWait.Duration > 0 {
		r.groupWait = spec.GroupWait.Duration
	}
	if spec.RepeatInterval != nil && spec.RepeatInterval.Duration > 0 {
		r.repeat = spec.RepeatInterval.Duration
	}
	if spec.SendResolved != nil {
		r.sendResolved = *spec.SendResolved
	}
	var errs []error
	for i, rs := range spec.Receivers {
		s := &slot{typ: receiverType(rs), hash: receiverHash(rs)}
		rcv, err := m.o.NewReceiver(rs, i)
		if err == nil && rcv == nil {
			err = errors.New("no receiver built")
		}
		if err != nil {
			errs = append(errs, err)
			rcv = brokenReceiver{name: fmt.Sprintf("%s[%d]", s.typ, i), err: err}
		}
		s.rcv, s.name = rcv, rcv.Name()
		s.status = ReceiverStatus{Name: s.name, Healthy: true}
		if err != nil {
			s.status = ReceiverStatus{Name: s.name, LastError: truncateError(err.Error()), LastFailure: time.Now()}
		}
		r.receivers = append(r.receivers, s)
	}

	m.mu.Lock()
	now := time.Now()
	var prev []receiverRecord
	if old := m.routes[name]; old != nil {
		r.sent, r.failed = old.sent, old.failed
		prev = old.records()
	} else if rec, ok := m.saved[name]; ok {
		r.sent, r.failed = rec.Sent, rec.Failed
		prev = rec.Receivers
		delete(m.saved, name)
	}
	refs := make([]recvRef, len(prev))
	for i, p := range prev {
		refs[i] = recvRef{index: i, typ: p.Type, hash: p.Hash}
	}
	for i, j := range assignReceivers(r, refs) {
		// Health carries over only to the same spec: a changed receiver
		// starts afresh (healthy until its first attempt).
		if j < 0 || r.receivers[j].hash != prev[i].Hash {
			continue
		}
		if _, broken := r.receivers[j].rcv.(brokenReceiver); broken {
			continue
		}
		st := prev[i].Status
		st.Name = r.receivers[j].name
		r.receivers[j].status = st
	}
	m.routes[name] = r
	for _, s := range r.receivers {
		m.sent.WithLabelValues(name, s.name, "success")
		m.sent.WithLabelValues(name, s.name, "failure")
	}
	m.pending.WithLabelValues(name).Set(float64(m.pendingCount[name]))
	dropped := m.remapEntriesLocked(r)
	m.rematchLocked(r, now)
	m.saveRouteLocked(r)
	m.markDirtyLocked(name)
	m.mu.Unlock()
	if dropped > 0 {
		m.log.Info("alerting: dropped pending notifications of receivers that were removed from the route", "route", name, "dropped", dropped)
	}
	m.poke()
	m.notifyDirty()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("alerting: route %s: %w", name, err)
	}
	return nil
}

// records returns the persisted form of r's receivers.
func (r *route) records() []receiverRecord {
	out := make([]receiverRecord, len(r.receivers))
	for i, s := range r.receivers {
		out[i] = receiverRecord{Type: s.typ, Hash: s.hash, Status: s.status}
	}
	return out
}

// saveRouteLocked persists r's counters and receiver health.
func (m *Manager) saveRouteLocked(r *route) {
	m.state.Put(routePrefix+r.name, stateRecord{Route: &routeRecord{Sent: r.sent, Failed: r.failed, Receivers: r.records()}})
}

// rematchLocked brings r's groups in line with its (new) match: firing
// alerts that no longer match leave their group silently, firing alerts
// that match join (or start) a group, and the groups are scheduled.
func (m *Manager) rematchLocked(r *route, now time.Time) {
	for _, g := range m.groups {
		if g.st.Route != r.name {
			continue
		}
		changed := false
		for fp, ga := range g.st.Alerts {
			if ga.Alert.Firing() && !r.match.matches(ga.Alert) {
				// The route no longer covers it: receivers that heard it
				// fire hear it resolve (per sendResolved), the others
				// never hear of it.
				if ga.Announced {
					ga.Alert.EndsAt = now
					g.st.Alerts[fp] = ga
				} else {
					delete(g.st.Alerts, fp)
				}
				changed = true
			}
		}
		if len(g.st.Alerts) == 0 {
			m.forgetGroupLocked(g)
			continue
		}
		if changed {
			m.putGroupLocked(g)
		}
		if g.st.Notified && g.hasChange() {
			m.dueLocked(g, now.Add(r.groupWait))
		}
		m.groupHeap.Set(g)
	}
	for _, a := range m.alerts {
		if !r.match.matches(a) {
			continue
		}
		g := m.groups[groupID(r.name, a.Kind, a.Object)]
		if g == nil {
			g = m.newGroupLocked(r, a.Kind, a.Object, now)
		}
		m.updateGroupLocked(g, a, now)
	}
}

// RemoveRoute removes a route (set or only loaded from the state dir):
// its groups are forgotten and its pending deliveries dropped (logged).
func (m *Manager) RemoveRoute(name string) {
	m.mu.Lock()
	delete(m.routes, name)
	delete(m.saved, name)
	for _, g := range m.groups {
		if g.st.Route == name {
			m.forgetGroupLocked(g)
		}
	}
	dropped := 0
	for _, e := range m.outbox {
		if e.e.Notification.Route == name {
			m.removeEntryLocked(e)
			dropped++
		}
	}
	for rk := range m.parked {
		if rk.route == name {
			delete(m.parked, rk)
		}
	}
	delete(m.pendingCount, name)
	delete(m.dirty, name)
	m.state.Delete(routePrefix + name)
	m.sent.DeletePartialMatch(prometheus.Labels{"route": name})
	m.pending.DeleteLabelValues(name)
	m.mu.Unlock()
	if dropped > 0 {
		m.log.Info("alerting: route removed, dropped its pending notifications", "route", name, "dropped", dropped)
	}
	m.poke()
}

// DropUnknownRoutes forgets the state (groups, pending notifications,
// counters) of routes that were loaded from the state dir but have not
// been set since New. Call it once the daemon has set all its routes
// after a start, so that a route deleted while it was down does not keep
// its notifications forever.
func (m *Manager) DropUnknownRoutes() {
	m.mu.Lock()
	unknown := map[string]struct{}{}
	for name := range m.saved {
		unknown[name] = struct{}{}
	}
	for _, g := range m.groups {
		if m.routes[g.st.Route] == nil {
			unknown[g.st.Route] = struct{}{}
		}
	}
	for _, e := range m.outbox {
		if m.routes[e.e.Notification.Route] == nil {
			unknown[e.e.Notification.Route] = struct{}{}
		}
	}
	m.mu.Unlock()
	for name := range unknown {
		m.RemoveRoute(name)
	}
}

// SendTest queues a test notification (Test set, one synthetic firing
// alert named TestAlertName) to every receiver of route, bypassing
// matching and groupWait, through the outbox.
func (m *Manager) SendTest(route string) error {
	m.mu.Lock()
	r := m.routes[route]
	if r == nil {
		m.mu.Unlock()
		return fmt.Errorf("alerting: send test through %q: %w", route, ErrUnknownRoute)
	}
	now := time.Now()
	groupKey := v1alpha1.KindAlertRoute + "/" + route
	id := notificationID(route, groupKey+"/test", now, m.seq)
	a := receivers.Alert{
		Name:     TestAlertName,
		Kind:     v1alpha1.KindAlertRoute,
		Object:   route,
		Severity: v1alpha1.SeverityInfo,
		Labels: map[string]string{
			"alertname": TestAlertName,
			"kind":      v1alpha1.KindAlertRoute,
			"name":      route,
			"severity":  v1alpha1.SeverityInfo,
		},
		Summary:         "Test notification of AlertRoute " + route,
		ResolvedSummary: "Test notification of AlertRoute " + route + " resolved",
		Message:         "This is a test notification (reconcilectl alert test); no action is needed.",
		StartsAt:        now,
		Fingerprint:     "test-" + id,
	}
	m.enqueueLocked(r, receivers.Notification{
		ID:        id,
		Route:     route,
		GroupKey:  groupKey,
		Status:    receivers.StatusFiring,
		Alerts:    []receivers.Alert{a},
		Host:      m.o.Hostname,
		CreatedAt: now,
		Test:      true,
	})
	m.mu.Unlock()
	m.log.Info("alerting: test notification queued", "route", route, "id", id)
	m.poke()
	m.notifyDirty()
	return nil
}
