// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// PhaseInvalid is the phase published while a resource's file is invalid
// (its Ready condition has reason InvalidSpec), as reconcilectl get shows it.
const PhaseInvalid = "Invalid"

// PhasePending is the phase published for a resource its controller has
// not looked at yet (a new resource), with Ready "Unknown", as Kubernetes
// shows a Pod that no kubelet has taken.
const PhasePending = "Pending"

// Status is the JSON document published, retained, on
// <prefix>/status/<kind>/<name>.
type Status struct {
	// Kind is the CamelCase kind ("Module").
	Kind string `json:"kind"`
	// Name is the resource's name.
	Name string `json:"name"`
	// Phase is status.phase: "Invalid" while the file is invalid,
	// "Pending" until a controller has set it.
	Phase string `json:"phase"`
	// Ready is the status of the Ready condition (True, False, Unknown),
	// empty when there is none yet.
	Ready string `json:"ready,omitempty"`
	// Reason and Message are those of the Ready condition.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Generation is metadata.generation.
	Generation int64 `json:"generation"`
	// ObservedGeneration is status.observedGeneration: the generation the
	// status reflects.
	ObservedGeneration int64 `json:"observedGeneration"`
	// Time is when the bridge saw this status first (for the resources
	// that exist when it starts: when it started).
	Time time.Time `json:"time"`
}

// StatusOf summarizes an object (the API view, as the store's List and
// Watch give it). Time is left zero.
func StatusOf(o v1alpha1.Object) Status {
	cs := o.GetCommonStatus()
	st := Status{
		Kind:               o.GetTypeMeta().Kind,
		Name:               o.GetObjectMeta().Name,
		Phase:              cs.Phase,
		Generation:         o.GetObjectMeta().Generation,
		ObservedGeneration: cs.ObservedGeneration,
	}
	if c := cs.Condition(v1alpha1.ConditionReady); c != nil {
		st.Ready, st.Reason, st.Message = string(c.Status), c.Reason, c.Message
		if c.Reason == v1alpha1.ReasonInvalidSpec {
			st.Phase = PhaseInvalid
		}
	}
	if st.Phase == "" {
		st.Phase = PhasePending
		if st.Ready == "" {
			st.Ready = string(metav1.ConditionUnknown)
		}
	}
	return st
}

// maxMessages bounds the error reports and replies waiting for the
// connection; the oldest are dropped beyond it.
const maxMessages = 100

// message is an error report or a reply waiting to be published.
type message struct {
	topic   string
	payload []byte
	props   *paho.PublishProperties
}

// statusEntry is what the bridge last saw of one resource.
type statusEntry struct {
	st      Status // Time set
	payload []byte // nil: the resource is gone, clear its retained message
}

// outbox holds what is waiting to be published. It is bounded: one entry
// per resource (a newer status replaces an unpublished older one) and at
// most maxMessages error reports and replies.
type outbox struct {
	mu       sync.Mutex
	statuses map[resources.Key]*statusEntry
	dirty    []resources.Key // statuses to publish, in order
	isDirty  map[resources.Key]bool
	msgs     []message
	dropped  int // messages dropped since the last publication
	inflight int // items taken by next and not yet published or failed
	up       bool
	hello    bool // the connection is new: subscribe, then publish everything
	conn     int  // connections so far, to tell a new one from the last
	wake     chan struct{}
}

func newOutbox() *outbox {
	return &outbox{
		statuses: map[resources.Key]*statusEntry{},
		isDirty:  map[resources.Key]bool{},
		wake:     make(chan struct{}, 1),
	}
}

func (o *outbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// markLocked queues the status of k for publication.
func (o *outbox) markLocked(k resources.Key) {
	if !o.isDirty[k] {
		o.isDirty[k] = true
		o.dirty = append(o.dirty, k)
	}
}

// set records the current status of k; it is queued only when its summary
// changed.
func (o *outbox) set(k resources.Key, st Status, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.statuses[k]; e != nil && e.payload != nil {
		was := e.st
		was.Time = time.Time{}
		if was == st {
			return
		}
	}
	st.Time = now.UTC()
	b, _ := json.Marshal(st) // cannot fail: strings, numbers and a time
	o.statuses[k] = &statusEntry{st: st, payload: b}
	o.markLocked(k)
	o.notify()
}

// remove records that k is gone: its retained status is to be cleared.
func (o *outbox) remove(k resources.Key) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.statuses[k]; e == nil || e.payload == nil {
		return
	}
	o.statuses[k] = &statusEntry{}
	o.markLocked(k)
	o.notify()
}

// removeMissing removes every resource not in keep (after a relist).
func (o *outbox) removeMissing(keep map[resources.Key]bool) {
	o.mu.Lock()
	var gone []resources.Key
	for k, e := range o.statuses {
		if e.payload != nil && !keep[k] {
			gone = append(gone, k)
		}
	}
	o.mu.Unlock()
	for _, k := range gone {
		o.remove(k)
	}
}

// stale queues a clear of a retained status found on the broker for k,
// unless k is a resource the bridge knows.
func (o *outbox) stale(k resources.Key) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.statuses[k]; e != nil && e.payload != nil {
		return
	}
	o.statuses[k] = &statusEntry{}
	o.markLocked(k)
	o.notify()
}

// push queues an error report or reply, dropping the oldest beyond
// maxMessages.
func (o *outbox) push(m message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.msgs) >= maxMessages {
		o.msgs = o.msgs[1:]
		o.dropped++
	}
	o.msgs = append(o.msgs, m)
	o.notify()
}

// connected records a new connection: the publisher subscribes and
// publishes every status again.
func (o *outbox) connected() {
	o.mu.Lock()
	o.up, o.hello = true, true
	o.conn++
	o.mu.Unlock()
	o.notify()
}

// disconnected records that the connection is down.
func (o *outbox) disconnected() {
	o.mu.Lock()
	o.up = false
	o.mu.Unlock()
}

// state reports whether the connection is up and new, and which
// connection it is.
func (o *outbox) state() (up, hello bool, conn int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.up, o.hello, o.conn
}

// greeted records that connection conn has its subscriptions, and queues
// every status for publication (the broker may have lost them). It does
// nothing when another connection came up meanwhile: that one is greeted
// in turn.
func (o *outbox) greeted(conn int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if conn != o.conn {
		return
	}
	o.hello = false
	for k := range o.statuses {
		o.markLocked(k)
	}
}

// idle reports whether the connection is up and greeted and nothing waits
// to be published.
func (o *outbox) idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.up && !o.hello && len(o.dirty) == 0 && len(o.msgs) == 0 && o.inflight == 0
}

// item is one publication taken from the outbox.
type item struct {
	msg    *message
	key    resources.Key
	status []byte // nil: clear
}

// next takes the next publication: error reports and replies first, then
// statuses. ok is false when nothing is waiting.
func (o *outbox) next() (it item, dropped int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.msgs) > 0 {
		m := o.msgs[0]
		o.msgs = o.msgs[1:]
		dropped, o.dropped = o.dropped, 0
		o.inflight++
		return item{msg: &m}, dropped, true
	}
	for len(o.dirty) > 0 {
		k := o.dirty[0]
		o.dirty = o.dirty[1:]
		delete(o.isDirty, k)
		if e := o.statuses[k]; e != nil {
			o.inflight++
			return item{key: k, status: e.payload}, 0, true
		}
	}
	return item{}, 0, false
}

// failed puts back an item whose publication failed.
func (o *outbox) failed(it item) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight--
	if it.msg != nil {
		o.msgs = append([]message{*it.msg}, o.msgs...)
		return
	}
	if !o.isDirty[it.key] {
		o.isDirty[it.key] = true
		o.dirty = append([]resources.Key{it.key}, o.dirty...)
	}
}

// published records a successful publication: a cleared resource is
// forgotten, unless it came back meanwhile.
func (o *outbox) published(it item) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inflight--
	if it.msg != nil || it.status != nil {
		return
	}
	if e := o.statuses[it.key]; e != nil && e.payload == nil && !o.isDirty[it.key] {
		delete(o.statuses, it.key)
	}
}
