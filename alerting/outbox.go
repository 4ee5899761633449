// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/reconciled/reconciled/alerting/receivers"

	"github.com/reconciled/reconciled/internal/backoff"
)

// outboxEntry is one notification for one receiver, persisted in
// outbox.json from before the first attempt until the receiver accepts it.
type outboxEntry struct {
	Notification receivers.Notification `json:"notification"`
	// Receiver is the index of the receiver in its route; ReceiverType and
	// ReceiverHash (of its spec) find it again after the route changed.
	Receiver     int    `json:"receiver"`
	ReceiverName string `json:"receiverName"`
	ReceiverType string `json:"receiverType"`
	ReceiverHash string `json:"receiverHash"`
	// Seq orders the entries: deliveries of one group to one receiver
	// happen in order.
	Seq         uint64    `json:"seq"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt"`
	LastError   string    `json:"lastError,omitempty"`
}

// entry is an outbox entry in memory.
type entry struct {
	key      string
	e        outboxEntry
	chain    *chain // nil while its route is not set
	idx      int    // in Manager.entryHeap, -1 when not scheduled
	inflight bool
	parked   bool // in Manager.parked
}

// chainKey identifies the deliveries of one group to one receiver.
type chainKey struct {
	route, groupKey string
	receiver        int
}

// recvKey identifies a receiver of a route that is set.
type recvKey struct {
	route    string
	receiver int
}

// receiverLimit is how many deliveries to s may be in flight at once:
// about half the workers, one while s is failing.
func (m *Manager) receiverLimit(s *slot) int {
	if !s.status.Healthy {
		return 1
	}
	return max(1, (m.o.Workers+1)/2)
}

// releaseLocked ends a delivery to rk and reschedules the entries parked
// because rk had too many deliveries in flight.
func (m *Manager) releaseLocked(rk recvKey) {
	if m.recvBusy[rk]--; m.recvBusy[rk] <= 0 {
		delete(m.recvBusy, rk)
	}
	m.unparkLocked(rk)
}

func (m *Manager) unparkLocked(rk recvKey) {
	for _, e := range m.parked[rk] {
		e.parked = false
		if m.outbox[e.key] == e && e.chain != nil {
			m.scheduleChainLocked(e.chain)
		}
	}
	delete(m.parked, rk)
}

// chain holds the pending deliveries of one group to one receiver, oldest
// first; only the first is scheduled, so that a resolved notification
// never overtakes the firing one it resolves.
type chain struct {
	key   chainKey
	items []*entry
}

// enqueueLocked writes n to the outbox for every receiver of r and
// schedules the deliveries. An entry that is already there (the same
// notification re-created after a crash) is left alone.
func (m *Manager) enqueueLocked(r *route, n receivers.Notification, onlyTypes ...string) {
	for i, s := range r.receivers {
		if len(onlyTypes) > 0 && !slices.Contains(onlyTypes, s.typ) {
			continue
		}
		key := n.ID + "/" + strconv.Itoa(i)
		if _, ok := m.outbox[key]; ok {
			continue
		}
		e := &entry{key: key, idx: -1, e: outboxEntry{
			Notification: n,
			Receiver:     i,
			ReceiverName: s.name,
			ReceiverType: s.typ,
			ReceiverHash: s.hash,
			Seq:          m.seq,
			NextAttempt:  n.CreatedAt,
		}}
		m.seq++
		m.outboxK.Put(key, e.e)
		m.outbox[key] = e
		m.pendingCount[r.name]++
		m.chainAddLocked(e)
	}
	m.pending.WithLabelValues(r.name).Set(float64(m.pendingCount[r.name]))
	m.markDirtyLocked(r.name)
}

// removeEntryLocked deletes e from the outbox.
func (m *Manager) removeEntryLocked(e *entry) {
	delete(m.outbox, e.key)
	m.outboxK.Delete(e.key)
	m.entryHeap.Remove(e)
	if e.chain != nil {
		m.chainRemoveLocked(e)
	}
	route := e.e.Notification.Route
	if m.pendingCount[route] > 0 {
		m.pendingCount[route]--
	}
	if _, set := m.routes[route]; set {
		m.pending.WithLabelValues(route).Set(float64(m.pendingCount[route]))
		m.markDirtyLocked(route)
	}
}

// chainAddLocked appends e (the newest of its chain) and schedules the
// chain.
func (m *Manager) chainAddLocked(e *entry) {
	k := chainKey{route: e.e.Notification.Route, groupKey: e.e.Notification.GroupKey, receiver: e.e.Receiver}
	c := m.chains[k]
	if c == nil {
		c = &chain{key: k}
		m.chains[k] = c
	}
	c.items = append(c.items, e)
	e.chain = c
	m.scheduleChainLocked(c)
}

// chainRemoveLocked takes e out of its chain.
func (m *Manager) chainRemoveLocked(e *entry) {
	c := e.chain
	e.chain = nil
	for i, x := range c.items {
		if x == e {
			c.items = append(c.items[:i], c.items[i+1:]...)
			break
		}
	}
	if len(c.items) == 0 {
		delete(m.chains, c.key)
		return
	}
	m.scheduleChainLocked(c)
}

// scheduleChainLocked puts the first entry of c in the heap (unless it is
// in flight) and keeps the others out.
func (m *Manager) scheduleChainLocked(c *chain) {
	for i, e := range c.items {
		if i == 0 && !e.inflight {
			m.entryHeap.Set(e)
		} else {
			m.entryHeap.Remove(e)
		}
	}
}

// hurryLocked makes the waiting deliveries to receiver of route due now:
// the receiver just accepted one, so it is back.
func (m *Manager) hurryLocked(route string, receiver int, now time.Time) {
	for _, c := range m.chains {
		if c.key.route != route || c.key.receiver != receiver {
			continue
		}
		if h := c.items[0]; !h.inflight && h.e.NextAttempt.After(now) {
			h.e.NextAttempt = now
			m.entryHeap.Set(h)
		}
	}
}

// recvRef is a receiver as an outbox entry or a persisted status knows it.
type recvRef struct {
	index     int
	typ, hash string
}

// assignReceivers maps receivers of an earlier version of route r to its
// current receivers, each at most once: first to the receiver with the
// same spec (preferably at the same index), then to a receiver of the same
// type at the same index (e.g. a corrected email receiver). -1: gone.
func assignReceivers(r *route, refs []recvRef) []int {
	out := make([]int, len(refs))
	taken := make([]bool, len(r.receivers))
	for i, ref := range refs {
		out[i] = -1
		if ref.index >= 0 && ref.index < len(r.receivers) && !taken[ref.index] && r.receivers[ref.index].hash == ref.hash {
			out[i] = ref.index
			taken[ref.index] = true
		}
	}
	for i, ref := range refs {
		if out[i] >= 0 {
			continue
		}
		for j, s := range r.receivers {
			if !taken[j] && s.hash == ref.hash {
				out[i] = j
				taken[j] = true
				break
			}
		}
	}
	for i, ref := range refs {
		if out[i] < 0 && ref.index >= 0 && ref.index < len(r.receivers) && !taken[ref.index] && r.receivers[ref.index].typ == ref.typ {
			out[i] = ref.index
			taken[ref.index] = true
		}
	}
	return out
}

// remapEntriesLocked points r's outbox entries at r's (new) receivers,
// drops those whose receiver is gone and rebuilds r's chains. It returns
// how many entries were dropped.
func (m *Manager) remapEntriesLocked(r *route) int {
	for rk := range m.parked {
		if rk.route == r.name {
			m.unparkLocked(rk)
		}
	}
	for k, c := range m.chains {
		if k.route != r.name {
			continue
		}
		for _, e := range c.items {
			m.entryHeap.Remove(e)
			e.chain = nil
		}
		delete(m.chains, k)
	}
	byID := map[string][]*entry{}
	for _, e := range m.outbox {
		if e.e.Notification.Route == r.name {
			byID[e.e.Notification.ID] = append(byID[e.e.Notification.ID], e)
		}
	}
	dropped := 0
	var keep []*entry
	for _, es := range byID {
		sort.Slice(es, func(i, j int) bool { return es[i].e.Receiver < es[j].e.Receiver })
		refs := make([]recvRef, len(es))
		for i, e := range es {
			refs[i] = recvRef{index: e.e.Receiver, typ: e.e.ReceiverType, hash: e.e.ReceiverHash}
		}
		for i, j := range assignReceivers(r, refs) {
			e := es[i]
			if j < 0 {
				m.log.Info("alerting: dropping notification for a receiver that was removed", "route", r.name, "receiver", e.e.ReceiverName, "id", e.e.Notification.ID)
				m.removeEntryLocked(e)
				dropped++
				continue
			}
			s := r.receivers[j]
			if e.e.Receiver != j || e.e.ReceiverName != s.name || e.e.ReceiverType != s.typ || e.e.ReceiverHash != s.hash {
				e.e.Receiver, e.e.ReceiverName, e.e.ReceiverType, e.e.ReceiverHash = j, s.name, s.typ, s.hash
				m.outboxK.Put(e.key, e.e)
			}
			keep = append(keep, e)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].e.Seq < keep[j].e.Seq })
	for _, e := range keep {
		m.chainAddLocked(e)
	}
	m.pending.WithLabelValues(r.name).Set(float64(m.pendingCount[r.name]))
	return dropped
}

// deliver makes one delivery attempt.
func (m *Manager) deliver(ctx context.Context, j job) {
	if ctx.Err() != nil {
		m.finish(j, nil, true)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, m.o.SendTimeout)
	err := send(sctx, j)
	cancel()
	m.finish(j, err, err != nil && ctx.Err() != nil)
}

// send calls the receiver, turning a panic into an error.
func send(ctx context.Context, j job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("receiver %s panicked: %v", j.receiver, p)
		}
	}()
	return j.rcv.Send(ctx, j.n)
}

// finish records the result of an attempt: success removes the entry from
// the outbox, failure schedules a retry. An attempt aborted by shutdown
// leaves the entry as it was.
func (m *Manager) finish(j job, err error, aborted bool) {
	now := time.Now()
	var retryIn time.Duration
	m.mu.Lock()
	m.busy--
	m.releaseLocked(j.rk)
	e := m.outbox[j.key]
	if e == nil || !e.inflight {
		// Dropped meanwhile (route or receiver removed).
		m.mu.Unlock()
		m.poke()
		return
	}
	e.inflight = false
	if aborted {
		if e.chain != nil {
			m.scheduleChainLocked(e.chain)
		}
		m.mu.Unlock()
		return
	}
	r := m.routes[j.route]
	var s *slot
	if r != nil && e.e.Receiver >= 0 && e.e.Receiver < len(r.receivers) {
		s = r.receivers[e.e.Receiver]
	}
	attempts := e.e.Attempts + 1
	if err == nil {
		m.removeEntryLocked(e)
		m.sent.WithLabelValues(j.route, j.receiver, "success").Inc()
		if r != nil {
			r.sent++
		}
		if s != nil {
			wasHealthy := s.status.Healthy
			s.status.Healthy = true
			s.status.LastSuccess = now
			if !wasHealthy {
				m.hurryLocked(r.name, e.e.Receiver, now)
			}
		}
	} else if receivers.IsPermanent(err) {
		msg := truncateError(err.Error())
		m.removeEntryLocked(e)
		m.sent.WithLabelValues(j.route, j.receiver, "failure").Inc()
		if r != nil {
			r.failed++
		}
		if s != nil {
			s.status.Healthy = false
			s.status.LastError = msg
			s.status.LastFailure = now
		}
	} else {
		msg := truncateError(err.Error())
		retryIn = m.backoff(attempts)
		e.e.Attempts = attempts
		e.e.LastError = msg
		e.e.NextAttempt = now.Add(retryIn)
		m.outboxK.Put(e.key, e.e)
		if e.chain != nil {
			m.scheduleChainLocked(e.chain)
		}
		m.sent.WithLabelValues(j.route, j.receiver, "failure").Inc()
		if r != nil {
			r.failed++
		}
		if s != nil {
			s.status.Healthy = false
			s.status.LastError = msg
			s.status.LastFailure = now
		}
	}
	if r != nil {
		m.saveRouteLocked(r)
		m.markDirtyLocked(r.name)
	}
	m.mu.Unlock()
	if err == nil {
		m.log.V(1).Info("alerting: notification delivered", "route", j.route, "receiver", j.receiver, "id", j.n.ID, "status", j.n.Status, "attempts", attempts)
	} else if receivers.IsPermanent(err) {
		m.log.Error(err, "alerting: notification rejected by the receiver; dropped", "route", j.route, "receiver", j.receiver, "id", j.n.ID, "attempts", attempts)
	} else {
		m.log.Error(err, "alerting: delivery failed, will retry", "route", j.route, "receiver", j.receiver, "id", j.n.ID, "attempts", attempts, "retryIn", retryIn.Round(time.Millisecond).String())
	}
	m.poke()
	m.notifyDirty()
}

// backoff is the delay after the attempts'th failed attempt: RetryBase *
// 2^(attempts-1), capped at RetryMax, jittered by ±12.5%.
func (m *Manager) backoff(attempts int) time.Duration {
	return backoff.Policy{Initial: min(m.o.RetryBase, m.o.RetryMax), Max: m.o.RetryMax, Jitter: 0.125}.Delay(attempts)
}

// truncateError bounds an error message kept in status and the outbox.
func truncateError(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
