// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// wait is the generous bound of every wait in these tests.
const wait = 20 * time.Second

// call is one call of fakeActions.
type call struct {
	Method, Kind, Name, Arg string
}

// fakeActions records calls; err, when set, is what every call returns.
type fakeActions struct {
	mu    sync.Mutex
	calls []call
	err   error
	// restartAll are the names RestartAll reports.
	restartAll []string
}

func (a *fakeActions) record(c call) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
	return a.err
}

func (a *fakeActions) Apply(kind, name string, body []byte) (apply.Result, error) {
	return apply.Created, a.record(call{"Apply", kind, name, string(body)})
}

func (a *fakeActions) Delete(kind, name string) (apply.Result, error) {
	return apply.Deleted, a.record(call{"Delete", kind, name, ""})
}

func (a *fakeActions) SetState(kind, name, state string) error {
	return a.record(call{"SetState", kind, name, state})
}

func (a *fakeActions) Restart(kind, name string) error {
	return a.record(call{"Restart", kind, name, ""})
}

// RestartAll reports every name of a.restartAll as restarted, but "bad"
// as failed.
func (a *fakeActions) RestartAll(kind, selector string, timeout time.Duration) (v1alpha1.RestartReport, error) {
	rep := v1alpha1.RestartReport{Restarted: []string{}, Failed: []v1alpha1.RestartFailure{}, Skipped: []v1alpha1.RestartFailure{}}
	for _, n := range a.restartAll {
		if n == "bad" {
			rep.Failed = append(rep.Failed, v1alpha1.RestartFailure{Name: n, Error: "bad.service is failed after the restart (result exit-code)"})
		} else {
			rep.Restarted = append(rep.Restarted, n)
		}
	}
	return rep, a.record(call{"RestartAll", kind, selector, timeout.String()})
}

func (a *fakeActions) Calls() []call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

// fakeSource is an in-memory StatusSource whose changes the test makes.
type fakeSource struct {
	mu       sync.Mutex
	objs     map[resources.Key]v1alpha1.Object
	watchers []chan resources.Event
	watches  int // Watch calls
}

func newFakeSource(objs ...v1alpha1.Object) *fakeSource {
	s := &fakeSource{objs: map[resources.Key]v1alpha1.Object{}}
	for _, o := range objs {
		s.objs[keyOf(o)] = o
	}
	return s
}

func keyOf(o v1alpha1.Object) resources.Key {
	return resources.Key{Kind: o.GetTypeMeta().Kind, Name: o.GetObjectMeta().Name}
}

func (s *fakeSource) List(kind string) []v1alpha1.Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []v1alpha1.Object
	for k, o := range s.objs {
		if k.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (s *fakeSource) Watch(kind string) (<-chan resources.Event, func()) {
	if kind != "" {
		panic("the bridge watches every kind")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watches++
	ch := make(chan resources.Event, 16)
	s.watchers = append(s.watchers, ch)
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if i := slices.Index(s.watchers, ch); i >= 0 {
			s.watchers = slices.Delete(s.watchers, i, i+1)
			close(ch)
		}
	}
}

func (s *fakeSource) Known(kind, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[resources.Key{Kind: kind, Name: name}] != nil
}

// put adds or changes an object and tells the watchers.
func (s *fakeSource) put(o v1alpha1.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := resources.Added
	if s.objs[keyOf(o)] != nil {
		t = resources.Modified
	}
	s.objs[keyOf(o)] = o
	for _, w := range s.watchers {
		w <- resources.Event{Type: t, Object: o}
	}
}

// del deletes an object and tells the watchers.
func (s *fakeSource) del(kind, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := resources.Key{Kind: kind, Name: name}
	o := s.objs[k]
	delete(s.objs, k)
	for _, w := range s.watchers {
		w <- resources.Event{Type: resources.Deleted, Object: o}
	}
}

// silently changes the objects without telling the watchers, then closes
// their channels, as the store does to a watcher that fell behind.
func (s *fakeSource) dropWatchers(change func(map[resources.Key]v1alpha1.Object)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s.objs)
	for _, w := range s.watchers {
		close(w)
	}
	s.watchers = nil
}

func (s *fakeSource) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watches
}

// module returns a Module with a phase and a Ready condition.
func module(name, phase string, gen int64) *v1alpha1.Module {
	m := &v1alpha1.Module{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindModule}}
	m.Name, m.Generation = name, gen
	m.Status.Phase, m.Status.ObservedGeneration = phase, gen
	ready := metav1.ConditionFalse
	if phase == v1alpha1.ModuleActive {
		ready = metav1.ConditionTrue
	}
	m.Status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: ready, Reason: phase, Message: "unit is " + phase})
	return m
}

// pub is one publication the fake client received.
type pub struct {
	Topic   string
	Payload string
	Retain  bool
	QoS     byte
	Props   *paho.PublishProperties
}

// fakeClient records publications and subscriptions; while down, every
// call fails as autopaho's does.
type fakeClient struct {
	mu      sync.Mutex
	down    bool
	refuse  map[string]bool // topics whose publications the broker refuses
	refused map[string]int  // attempts to publish on a refused topic
	noSubs  bool            // the broker refuses every subscription
	pubs    []pub
	subs    [][]paho.SubscribeOptions
}

func (c *fakeClient) Publish(ctx context.Context, p *paho.Publish) (*paho.PublishResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, autopaho.ConnectionDownError
	}
	if c.refuse[p.Topic] {
		if c.refused == nil {
			c.refused = map[string]int{}
		}
		c.refused[p.Topic]++
		return &paho.PublishResponse{ReasonCode: 0x87}, fmt.Errorf("error publishing: not authorized")
	}
	c.pubs = append(c.pubs, pub{p.Topic, string(p.Payload), p.Retain, p.QoS, p.Properties})
	return &paho.PublishResponse{}, nil
}

func (c *fakeClient) Subscribe(ctx context.Context, s *paho.Subscribe) (*paho.Suback, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, autopaho.ConnectionDownError
	}
	c.subs = append(c.subs, s.Subscriptions)
	if c.noSubs {
		return &paho.Suback{Reasons: slices.Repeat([]byte{0x87}, len(s.Subscriptions))}, fmt.Errorf("at least one requested subscription failed")
	}
	return &paho.Suback{Reasons: make([]byte, len(s.Subscriptions))}, nil
}

// attempts returns how often a refused topic was published to.
func (c *fakeClient) attempts(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused[topic]
}

func (c *fakeClient) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

func (c *fakeClient) Pubs() []pub {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pubs)
}

func (c *fakeClient) Subs() [][]paho.SubscribeOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.subs)
}

// on returns the publications on topic.
func (c *fakeClient) on(topic string) []pub {
	var out []pub
	for _, p := range c.Pubs() {
		if p.Topic == topic {
			out = append(out, p)
		}
	}
	return out
}

// last returns the last publication on topic, and whether there was one.
func (c *fakeClient) last(topic string) (pub, bool) {
	ps := c.on(topic)
	if len(ps) == 0 {
		return pub{}, false
	}
	return ps[len(ps)-1], true
}

// harness is a bridge running its loops against fakes.
type harness struct {
	b       *Bridge
	actions *fakeActions
	source  *fakeSource
	client  *fakeClient
}

// startHarness runs a bridge (prefix "rc") on fakes until the test ends.
// The connection is down until the test calls b.out.connected().
func startHarness(t *testing.T, objs ...v1alpha1.Object) *harness {
	t.Helper()
	h := &harness{actions: &fakeActions{}, source: newFakeSource(objs...), client: &fakeClient{}}
	b, err := New(Options{Broker: "mqtt://127.0.0.1:1", TopicPrefix: "rc", Log: testr.New(t)}, h.actions, h.source)
	if err != nil {
		t.Fatal(err)
	}
	h.b = b
	runLoops(t, b, h.client)
	return h
}

// runLoops runs the bridge's loops against c until the test ends.
func runLoops(t *testing.T, b *Bridge, c client) {
	ctx, cancel := context.WithCancel(context.Background())
	events, stop := b.relist()
	wg := b.loops(ctx, c, events, stop)
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// connect brings the fake connection up and waits until the bridge has
// subscribed.
func (h *harness) connect(t *testing.T) {
	t.Helper()
	n := len(h.client.Subs())
	h.client.setDown(false)
	h.b.out.connected()
	waitfor.Within(t, wait, "the bridge to subscribe", func() bool { return len(h.client.Subs()) > n })
}

// command delivers a command as the MQTT client would.
func (h *harness) command(topic, payload string) {
	h.b.receive(&paho.Publish{Topic: topic, Payload: []byte(payload), QoS: 1})
}

// status decodes a status payload.
func decodeStatus(t *testing.T, payload string) Status {
	t.Helper()
	var st Status
	if err := json.Unmarshal([]byte(payload), &st); err != nil {
		t.Fatalf("status %q: %v", payload, err)
	}
	return st
}

// pubOf is a QoS 1 message as the MQTT client delivers it.
func pubOf(topic, payload string) *paho.Publish {
	return &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: 1}
}

// settled reports whether the bridge is connected, subscribed and has
// published everything it had to.
func settled(b *Bridge) bool { return b.out.idle() }

// published returns the phase of the last status the bridge holds for a
// module, and whether that is a live status (not a clear, nor nothing).
func published(b *Bridge, name string) (phase string, live bool) {
	b.out.mu.Lock()
	defer b.out.mu.Unlock()
	e := b.out.statuses[resources.Key{Kind: "Module", Name: name}]
	if e == nil || e.payload == nil {
		return "", false
	}
	return e.st.Phase, true
}
