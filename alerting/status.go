// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"sort"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// What the AlertRoute controller shows of a route: its counters and the
// health of its receivers, reported through Options.OnRouteStatus.

// RouteStatus is a route's delivery status for its AlertRoute.
type RouteStatus struct {
	// Sent counts notifications accepted by a receiver.
	Sent int64
	// Failed counts failed delivery attempts.
	Failed int64
	// Pending counts outbox entries (notification and receiver) not yet
	// accepted.
	Pending int64
	// Receivers are the route's receivers, in spec order.
	Receivers []ReceiverStatus
}

// Phase is AlertRouteReady when every receiver is healthy and
// AlertRouteDegraded otherwise.
func (s RouteStatus) Phase() string {
	for _, r := range s.Receivers {
		if !r.Healthy {
			return v1alpha1.AlertRouteDegraded
		}
	}
	return v1alpha1.AlertRouteReady
}

// ReceiverStatus is the health of one receiver of a route.
type ReceiverStatus struct {
	// Name is the receiver's name, e.g. "email[0]".
	Name string `json:"name"`
	// Healthy is true when the last attempt succeeded or there was none.
	Healthy bool `json:"healthy"`
	// LastError is the error of the last failed attempt (never a secret).
	LastError string `json:"lastError,omitempty"`
	// LastSuccess is when a delivery last succeeded.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastFailure is when a delivery last failed.
	LastFailure time.Time `json:"lastFailure,omitzero"`
}

// Status returns the delivery status of a route that is set.
func (m *Manager) Status(route string) (RouteStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.routes[route]
	if r == nil {
		return RouteStatus{}, false
	}
	s := RouteStatus{Sent: r.sent, Failed: r.failed, Pending: m.pendingCount[route]}
	for _, sl := range r.receivers {
		s.Receivers = append(s.Receivers, sl.status)
	}
	return s, true
}

// markDirtyLocked notes that route's status changed.
func (m *Manager) markDirtyLocked(route string) { m.dirty[route] = struct{}{} }

// notifyDirty calls OnRouteStatus for the routes whose status changed.
func (m *Manager) notifyDirty() {
	m.mu.Lock()
	if len(m.dirty) == 0 {
		m.mu.Unlock()
		return
	}
	routes := make([]string, 0, len(m.dirty))
	for r := range m.dirty {
		routes = append(routes, r)
	}
	clear(m.dirty)
	m.mu.Unlock()
	if m.o.OnRouteStatus == nil {
		return
	}
	sort.Strings(routes)
	for _, r := range routes {
		m.o.OnRouteStatus(r)
	}
}
