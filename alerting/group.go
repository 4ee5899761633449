// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/reconciled/reconciled/alerting/receivers"
)

// groupAlert is an alert in a group.
type groupAlert struct {
	Alert receivers.Alert `json:"alert"`
	// Announced is set when the group's last notification had the alert
	// firing.
	Announced bool `json:"announced,omitempty"`
}

// groupState is the persisted state of a group: one route and resource.
type groupState struct {
	Route  string `json:"route"`
	Kind   string `json:"kind"`
	Object string `json:"object"`
	// Created tells this group apart from earlier groups of the same
	// resource; it is part of the notification IDs.
	Created time.Time `json:"created"`
	// Seq is the sequence number of the group's next notification.
	Seq uint64 `json:"seq"`
	// Notified is set once a firing notification was queued.
	Notified bool      `json:"notified,omitempty"`
	LastSent time.Time `json:"lastSent,omitzero"`
	// Refreshed is when firing alerts were last re-sent to Alertmanager
	// receivers (see Options.AlertmanagerRefresh).
	Refreshed time.Time `json:"refreshed,omitzero"`
	// Due is when the group is evaluated next.
	Due    time.Time             `json:"due"`
	Alerts map[string]groupAlert `json:"alerts"`
}

// group is a group in memory.
type group struct {
	id  string
	st  groupState
	idx int // in Manager.groupHeap, -1 when not scheduled
}

// key is the Notification.GroupKey: "Kind/object".
func (g *group) key() string { return g.st.Kind + "/" + g.st.Object }

// hasChange reports whether an alert's state differs from what the last
// notification announced.
func (g *group) hasChange() bool {
	for _, ga := range g.st.Alerts {
		if ga.Alert.Firing() != ga.Announced {
			return true
		}
	}
	return false
}

func groupID(route, kind, object string) string { return route + "/" + kind + "/" + object }

func objectKey(kind, object string) string { return kind + "/" + object }

// notificationID is the stable ID of a group's seq'th notification.
func notificationID(route, groupKey string, created time.Time, seq uint64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", route, groupKey, created.UnixNano(), seq)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// addGroupLocked indexes g (without scheduling it).
func (m *Manager) addGroupLocked(g *group) {
	m.groups[g.id] = g
	ok := objectKey(g.st.Kind, g.st.Object)
	if m.byObject[ok] == nil {
		m.byObject[ok] = map[string]*group{}
	}
	m.byObject[ok][g.id] = g
}

// newGroupLocked starts a group of r, due groupWait from now.
func (m *Manager) newGroupLocked(r *route, kind, object string, now time.Time) *group {
	g := &group{
		id: groupID(r.name, kind, object),
		st: groupState{
			Route:   r.name,
			Kind:    kind,
			Object:  object,
			Created: now,
			Due:     now.Add(r.groupWait),
			Alerts:  map[string]groupAlert{},
		},
		idx: -1,
	}
	m.addGroupLocked(g)
	m.groupHeap.Set(g)
	return g
}

// forgetGroupLocked removes g everywhere.
func (m *Manager) forgetGroupLocked(g *group) {
	delete(m.groups, g.id)
	ok := objectKey(g.st.Kind, g.st.Object)
	if gs := m.byObject[ok]; gs != nil {
		delete(gs, g.id)
		if len(gs) == 0 {
			delete(m.byObject, ok)
		}
	}
	m.groupHeap.Remove(g)
	m.state.Delete(groupPrefix + g.id)
}

// putGroupLocked persists g. The alerts map is copied: the kvlog keeps the
// value and may encode it later, concurrently.
func (m *Manager) putGroupLocked(g *group) {
	st := g.st
	st.Alerts = maps.Clone(g.st.Alerts)
	m.state.Put(groupPrefix+g.id, stateRecord{Group: &st})
}

// dueLocked moves g's next evaluation to t if that is earlier, but not
// before groupWait after its last notification, and schedules it when its
// route is set.
func (m *Manager) dueLocked(g *group, t time.Time) {
	r := m.routes[g.st.Route]
	if r != nil && g.st.Notified {
		if earliest := g.st.LastSent.Add(r.groupWait); t.Before(earliest) {
			t = earliest
		}
	}
	if g.st.Due.IsZero() || t.Before(g.st.Due) {
		g.st.Due = t
	}
	if r != nil {
		m.groupHeap.Set(g)
	}
}

// updateGroupLocked records a's state in g; it reports whether g changed.
// A change of firing state after the group's first notification makes the
// group due groupWait from now (batching later changes with it).
func (m *Manager) updateGroupLocked(g *group, a receivers.Alert, now time.Time) bool {
	ga, in := g.st.Alerts[a.Fingerprint]
	if !in && !a.Firing() {
		return false
	}
	if in {
		a.Replaced = ga.Alert.Replaced
	}
	if in && sameAlert(ga.Alert, a) {
		return false
	}
	wasFiring := in && ga.Alert.Firing()
	// A firing alert whose labels change (a Check's new level) is news,
	// as a new alert is: it is announced again after groupWait, and the
	// labels it had are remembered for Alertmanager to end.
	relabelled := wasFiring && a.Firing() && !maps.Equal(ga.Alert.Labels, a.Labels)
	if relabelled {
		ga.Announced = false
		a.Replaced = append(slices.Clone(a.Replaced), ga.Alert.Labels)
		if n := len(a.Replaced); n > receivers.MaxReplaced {
			a.Replaced = a.Replaced[n-receivers.MaxReplaced:]
		}
	}
	ga.Alert = a
	g.st.Alerts[a.Fingerprint] = ga
	if (wasFiring != a.Firing() || relabelled) && g.st.Notified {
		if r := m.routes[g.st.Route]; r != nil {
			m.dueLocked(g, now.Add(r.groupWait))
		}
	}
	m.putGroupLocked(g)
	return true
}

// flushLocked evaluates a group that is due (and out of the heap):
//   - never notified: nothing firing any more is a flap (forget the group),
//     else send the firing alerts;
//   - nothing firing any more: send the resolution (with sendResolved) and
//     forget the group;
//   - an alert started firing, or one resolved (with sendResolved): send
//     the firing alerts and the resolved ones;
//   - repeatInterval passed since the last notification: send again;
//   - otherwise wait for the repeat.
func (m *Manager) flushLocked(g *group, r *route, now time.Time) {
	var firing, resolved []receivers.Alert
	newFiring := false
	for _, ga := range g.st.Alerts {
		switch {
		case ga.Alert.Firing():
			firing = append(firing, ga.Alert)
			newFiring = newFiring || !ga.Announced
		case ga.Announced:
			resolved = append(resolved, ga.Alert)
		}
	}
	sortAlerts(firing)
	sortAlerts(resolved)
	switch {
	case !g.st.Notified && len(firing) == 0:
		m.log.V(1).Info("alerting: alert resolved within groupWait, nothing sent", "route", r.name, "group", g.key())
		m.forgetGroupLocked(g)
	case len(firing) == 0:
		if r.sendResolved && len(resolved) > 0 {
			m.notifyLocked(g, r, receivers.StatusResolved, resolved, now)
		}
		m.forgetGroupLocked(g)
	case !g.st.Notified || newFiring || r.sendResolved && len(resolved) > 0 || !now.Before(g.st.LastSent.Add(r.repeat)):
		alerts := firing
		if r.sendResolved {
			alerts = append(alerts, resolved...)
		}
		m.notifyLocked(g, r, receivers.StatusFiring, alerts, now)
		for fp, ga := range g.st.Alerts {
			if !ga.Alert.Firing() {
				delete(g.st.Alerts, fp)
				continue
			}
			ga.Announced = true
			g.st.Alerts[fp] = ga
		}
		g.st.Notified = true
		g.st.LastSent = now
		g.st.Refreshed = now
		g.st.Due = m.nextGroupDue(g, r)
		m.putGroupLocked(g)
		m.groupHeap.Set(g)
	default:
		// Nothing to tell (e.g. an alert resolved and fired again within
		// groupWait, or a resolution without sendResolved): drop what
		// resolved and wait for the repeat.
		for fp, ga := range g.st.Alerts {
			if !ga.Alert.Firing() {
				delete(g.st.Alerts, fp)
			}
		}
		// Alertmanager forgets an alert not re-sent within its
		// resolve_timeout (5m by default): keep it informed while firing,
		// whatever the route's repeatInterval says for the other receivers.
		// One refresh at a time: while Alertmanager is down they must not
		// pile up in the outbox ahead of the resolution.
		if r.has(typeAlertmanager) && !now.Before(g.st.Refreshed.Add(m.o.AlertmanagerRefresh)) && !m.pendingLocked(r.name, g.key(), typeAlertmanager) {
			m.notifyLocked(g, r, receivers.StatusFiring, firing, now, typeAlertmanager)
			g.st.Refreshed = now
		}
		g.st.Due = m.nextGroupDue(g, r)
		m.putGroupLocked(g)
		m.groupHeap.Set(g)
	}
}

// pendingLocked reports whether the outbox holds a notification of the
// group for a receiver of the type.
func (m *Manager) pendingLocked(route, groupKey, typ string) bool {
	for _, e := range m.outbox {
		if e.e.Notification.Route == route && e.e.Notification.GroupKey == groupKey && e.e.ReceiverType == typ {
			return true
		}
	}
	return false
}

// nextGroupDue is when a notified, firing group is looked at again: its
// repeat, or earlier the Alertmanager refresh.
func (m *Manager) nextGroupDue(g *group, r *route) time.Time {
	due := g.st.LastSent.Add(max(r.repeat, r.groupWait))
	if r.has(typeAlertmanager) {
		if ref := g.st.Refreshed.Add(m.o.AlertmanagerRefresh); ref.Before(due) {
			due = ref
		}
	}
	return due
}

// notifyLocked queues the group's next notification. The outbox entries
// are written before the group's new sequence number, so a crash in
// between re-creates the same notification (same ID), never loses it.
// notifyLocked queues a notification of the group for every receiver of
// the route, or only those of the given types.
func (m *Manager) notifyLocked(g *group, r *route, status string, alerts []receivers.Alert, now time.Time, onlyTypes ...string) {
	n := receivers.Notification{
		ID:        notificationID(r.name, g.key(), g.st.Created, g.st.Seq),
		Route:     r.name,
		GroupKey:  g.key(),
		Status:    status,
		Alerts:    alerts,
		Host:      m.o.Hostname,
		CreatedAt: now,
	}
	m.enqueueLocked(r, n, onlyTypes...)
	g.st.Seq++
	m.log.V(1).Info("alerting: notification queued", "route", r.name, "group", n.GroupKey, "status", status, "alerts", len(alerts), "id", n.ID)
}

// sortAlerts orders alerts by start, name and fingerprint.
func sortAlerts(as []receivers.Alert) {
	sort.Slice(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if !a.StartsAt.Equal(b.StartsAt) {
			return a.StartsAt.Before(b.StartsAt)
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Fingerprint < b.Fingerprint
	})
}
