// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package events records Kubernetes-style events about the resources the
// daemon reconciles (Process, Link, Module, PiNode, AlertRoute), for
// `reconcilectl events` and `reconcilectl describe`.
//
// Controllers record events through a Recorder. Repeats of the same event
// (same object, type, reason and message) are aggregated into one Event
// whose Count and LastTimestamp grow, like core/v1 events, so that they
// print as kubectl's "x5 over 10m". The Store is bounded (in total, per
// object and by age) and durable: every change is one small append to a
// kvlog, so the events survive a daemon restart, or a crash.
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/reconciled/reconciled/internal/timerheap"
	"github.com/reconciled/reconciled/kvlog"
)

// Event types, as in core/v1.
const (
	// TypeNormal is for events that need no action.
	TypeNormal = "Normal"
	// TypeWarning is for events that may need attention.
	TypeWarning = "Warning"
)

// ReasonStateSetAside is the event of a durable state file of the daemon
// that was corrupt and set aside (kvlog.OpenOrSetAside); it is recorded on
// the object Daemon/state.
const ReasonStateSetAside = "StateSetAside"

// Defaults and limits of a Store.
const (
	// DefaultMaxEvents is the default bound on the number of events.
	DefaultMaxEvents = 10000
	// DefaultMaxAge is the default time an event is kept after it was last
	// seen (kube-apiserver's default event TTL is 1h; a daemon's history is
	// worth a day).
	DefaultMaxAge = 24 * time.Hour
	// MaxEventsPerObject bounds the distinct events kept about one object;
	// beyond it the object's oldest events are dropped.
	MaxEventsPerObject = 100
	// MaxMessageLen bounds the length of a message in bytes; longer
	// messages are cut and end with "...".
	MaxMessageLen = 1024
	// WatchBuffer is the capacity of a watch channel; a watcher that falls
	// this far behind is dropped.
	WatchBuffer = 256
	// MaxSimilar is how many distinct events of one object with the same
	// type and reason are kept apart within SimilarWindow; more are
	// combined into one event (the kubelet's aggregator does the same,
	// from 10), so twenty restarts do not fill describe with
	// "Started pid N" lines.
	MaxSimilar = 3
	// SimilarWindow is how long a distinct event counts as recent for
	// MaxSimilar.
	SimilarWindow = 10 * time.Minute
	// CombinedPrefix starts the message of a combined event.
	CombinedPrefix = "(combined from similar events): "
)

// pruneInterval is how often recording a new event may prune expired
// events.
const pruneInterval = time.Minute

// Event is one aggregated event, after core/v1 Event. Timestamps have a
// precision of one second, as in Kubernetes.
type Event struct {
	// Name is a stable id: "<kind>.<name>.<hash of type, reason and
	// message>", lower-case.
	Name string `json:"name"`
	// Kind is the kind of the involved object, e.g. "Link".
	Kind string `json:"kind"`
	// ObjectName is the name of the involved object.
	ObjectName string `json:"objectName"`
	// Type is TypeNormal or TypeWarning.
	Type string `json:"type"`
	// Reason is a short CamelCase reason, e.g. "Started".
	Reason string `json:"reason"`
	// Message is a human-readable description.
	Message string `json:"message"`
	// Source is the component that recorded the event last, e.g.
	// "link-controller".
	Source string `json:"source"`
	// FirstTimestamp is when the event was first recorded.
	FirstTimestamp metav1.Time `json:"firstTimestamp"`
	// LastTimestamp is when the event was most recently recorded.
	LastTimestamp metav1.Time `json:"lastTimestamp"`
	// Count is how many times the event was recorded.
	Count int32 `json:"count"`
}

// Recorder is what controllers use to record events.
type Recorder interface {
	// Eventf records an event about the object kind/name. Repeats of the
	// same (kind, name, type, reason, message) are aggregated: the count
	// grows and lastTimestamp is updated. Without args, format is the
	// message verbatim.
	Eventf(kind, name, eventType, reason, format string, args ...any)
}

// Options configures a Store.
type Options struct {
	// Path is the kvlog path of the store (e.g. <state-dir>/events.json);
	// "" keeps events in memory only.
	Path string
	// MaxEvents bounds the number of events (default DefaultMaxEvents);
	// beyond it, the events with the oldest LastTimestamp are dropped.
	MaxEvents int
	// MaxAge is how long an event is kept after its LastTimestamp (default
	// DefaultMaxAge).
	MaxAge time.Duration
	// Source is the source of events recorded through Store.Eventf.
	Source string
	// Clock returns the current time (default time.Now); for tests.
	Clock func() time.Time
	// OnError, when set, receives persistence errors, which only weaken
	// durability, and the error of a corrupt store file that was set aside.
	OnError func(error)
}

// record is an Event as stored in the kvlog: seq orders events with the
// same LastTimestamp.
type record struct {
	Event
	Seq uint64 `json:"seq"`
}

// entry is an event in memory.
type entry struct {
	ev  Event
	seq uint64
	idx int // in Store.byAge
}

// older orders entries by LastTimestamp, then by when they were recorded.
func (e *entry) older(o *entry) bool {
	if !e.ev.LastTimestamp.Equal(&o.ev.LastTimestamp) {
		return e.ev.LastTimestamp.Before(&o.ev.LastTimestamp)
	}
	if e.seq != o.seq {
		return e.seq < o.seq
	}
	return e.ev.Name < o.ev.Name
}

type objectKey struct{ kind, name string }

// Store keeps events, bounded and durable. It is a Recorder stamping
// Options.Source; ForSource gives Recorders for other sources. It is safe
// for concurrent use.
type Store struct {
	opts  Options
	clock func() time.Time
	kv    *kvlog.Map[record]

	mu        sync.Mutex
	byName    map[string]*entry
	byObject  map[objectKey]map[string]*entry
	byAge     *timerheap.Heap[*entry] // oldest first
	seq       uint64
	lastPrune time.Time
	watchers  map[*watcher]struct{}
	closed    bool
}

type watcher struct {
	ch   chan Event
	once sync.Once
}

var _ Recorder = (*Store)(nil)

// NewStore opens the store at o.Path, dropping the events that have
// expired or exceed the bounds. A store file that is not valid JSON is
// renamed to Path+".corrupt" and the store starts empty: events are
// diagnostics and must not keep the daemon from starting.
func NewStore(o Options) (*Store, error) {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	kv, err := kvlog.OpenOrSetAside[record](o.Path, o.OnError)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	kv.OnError = o.OnError
	s := &Store{
		opts:     o,
		clock:    clock,
		kv:       kv,
		byName:   map[string]*entry{},
		byAge:    timerheap.New((*entry).older, func(e *entry) *int { return &e.idx }),
		byObject: map[objectKey]map[string]*entry{},
		watchers: map[*watcher]struct{}{},
	}
	var stale []string
	kv.Range(func(key string, r record) {
		if key != r.Name || r.Name == "" {
			stale = append(stale, key)
			return
		}
		if r.Count < 1 {
			r.Count = 1
		}
		s.seq = max(s.seq, r.Seq)
		s.addLocked(&entry{ev: r.Event, seq: r.Seq})
	})
	for _, key := range stale {
		kv.Delete(key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneLocked(now)
	s.lastPrune = now.Time
	for _, es := range s.byObject {
		for len(es) > MaxEventsPerObject {
			s.removeLocked(oldest(es))
		}
	}
	for s.byAge.Len() > s.opts.MaxEvents {
		oldest, _ := s.byAge.Peek()
		s.removeLocked(oldest)
	}
	return s, nil
}

// now returns the current time with the precision of metav1.Time, in the
// form that decoding a stored event gives.
func (s *Store) now() metav1.Time {
	return metav1.NewTime(time.Unix(s.clock().Unix(), 0))
}

// Eventf records an event with Options.Source as its source.
func (s *Store) Eventf(kind, name, eventType, reason, format string, args ...any) {
	s.record(s.opts.Source, kind, name, eventType, reason, format, args...)
}

// ForSource returns a Recorder into s that stamps events with source.
func (s *Store) ForSource(source string) Recorder {
	return sourceRecorder{s: s, source: source}
}

type sourceRecorder struct {
	s      *Store
	source string
}

// Eventf records an event with the recorder's source.
func (r sourceRecorder) Eventf(kind, name, eventType, reason, format string, args ...any) {
	r.s.record(r.source, kind, name, eventType, reason, format, args...)
}

func (s *Store) record(source, kind, name, eventType, reason, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	msg = truncate(msg, MaxMessageLen)
	if eventType == "" {
		eventType = TypeNormal
	}
	id := eventName(kind, name, eventType, reason, msg)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.now()
	s.seq++
	if e, ok := s.byName[id]; ok {
		if e.ev.Kind == kind && e.ev.ObjectName == name && e.ev.Type == eventType &&
			e.ev.Reason == reason && e.ev.Message == msg {
			if e.ev.Count < math.MaxInt32 {
				e.ev.Count++
			}
			if !now.Before(&e.ev.LastTimestamp) {
				e.ev.LastTimestamp = now
			}
			e.ev.Source = source
			e.seq = s.seq
			s.byAge.Set(e)
			s.persistLocked(e)
			s.notifyLocked(e.ev)
			return
		}
		// Another object or event with the same name (names are
		// lower-cased): the newer one takes its place.
		s.removeLocked(e)
	}
	if d := now.Sub(s.lastPrune); d >= pruneInterval || d < 0 {
		s.pruneLocked(now)
		s.lastPrune = now.Time
	}
	if s.similarLocked(kind, name, eventType, reason, now) >= MaxSimilar {
		s.combineLocked(source, kind, name, eventType, reason, msg, now)
		return
	}
	e := &entry{
		ev: Event{
			Name:           id,
			Kind:           kind,
			ObjectName:     name,
			Type:           eventType,
			Reason:         reason,
			Message:        msg,
			Source:         source,
			FirstTimestamp: now,
			LastTimestamp:  now,
			Count:          1,
		},
		seq: s.seq,
	}
	s.addLocked(e)
	s.persistLocked(e)
	if es := s.byObject[objectKey{kind, name}]; len(es) > MaxEventsPerObject {
		s.removeLocked(oldest(es))
	}
	for s.byAge.Len() > s.opts.MaxEvents {
		oldest, _ := s.byAge.Peek()
		s.removeLocked(oldest)
	}
	s.notifyLocked(e.ev)
}

// similarLocked counts the distinct events of an object with the same
// type and reason seen within SimilarWindow, the combined one excluded.
func (s *Store) similarLocked(kind, name, eventType, reason string, now metav1.Time) int {
	n := 0
	for _, e := range s.byObject[objectKey{kind, name}] {
		if e.ev.Type == eventType && e.ev.Reason == reason && !strings.HasPrefix(e.ev.Message, CombinedPrefix) &&
			now.Sub(e.ev.LastTimestamp.Time) <= SimilarWindow {
			n++
		}
	}
	return n
}

// combineLocked records msg into the object's combined event of that type
// and reason, as the kubelet's event aggregator does: one line whose count
// grows and whose message is the latest, instead of a line per pid.
func (s *Store) combineLocked(source, kind, name, eventType, reason, msg string, now metav1.Time) {
	id := eventName(kind, name, eventType, reason, "\x00combined")
	text := truncate(CombinedPrefix+msg, MaxMessageLen)
	if e, ok := s.byName[id]; ok && e.ev.Kind == kind && e.ev.ObjectName == name {
		if e.ev.Count < math.MaxInt32 {
			e.ev.Count++
		}
		e.ev.Message, e.ev.Source, e.ev.LastTimestamp, e.seq = text, source, now, s.seq
		s.byAge.Set(e)
		s.persistLocked(e)
		s.notifyLocked(e.ev)
		return
	}
	e := &entry{ev: Event{Name: id, Kind: kind, ObjectName: name, Type: eventType, Reason: reason, Message: text, Source: source,
		FirstTimestamp: now, LastTimestamp: now, Count: 1}, seq: s.seq}
	s.addLocked(e)
	s.persistLocked(e)
	s.notifyLocked(e.ev)
}

// addLocked indexes e (it is not persisted).
func (s *Store) addLocked(e *entry) {
	s.byName[e.ev.Name] = e
	k := objectKey{e.ev.Kind, e.ev.ObjectName}
	es := s.byObject[k]
	if es == nil {
		es = map[string]*entry{}
		s.byObject[k] = es
	}
	es[e.ev.Name] = e
	e.idx = -1
	s.byAge.Set(e)
}

// removeLocked drops e from the indexes and the kvlog.
func (s *Store) removeLocked(e *entry) {
	delete(s.byName, e.ev.Name)
	k := objectKey{e.ev.Kind, e.ev.ObjectName}
	if es := s.byObject[k]; es != nil {
		delete(es, e.ev.Name)
		if len(es) == 0 {
			delete(s.byObject, k)
		}
	}
	s.byAge.Remove(e)
	s.kv.Delete(e.ev.Name)
}

func (s *Store) persistLocked(e *entry) {
	s.kv.Put(e.ev.Name, record{Event: e.ev, Seq: e.seq})
}

// pruneLocked drops the events last seen more than MaxAge before now.
func (s *Store) pruneLocked(now metav1.Time) {
	for oldest, ok := s.byAge.Peek(); ok && s.expired(oldest.ev, now); oldest, ok = s.byAge.Peek() {
		s.removeLocked(oldest)
	}
}

func (s *Store) expired(ev Event, now metav1.Time) bool {
	return now.Sub(ev.LastTimestamp.Time) > s.opts.MaxAge
}

// oldest returns the oldest of es, which is not empty.
func oldest(es map[string]*entry) *entry {
	var o *entry
	for _, e := range es {
		if o == nil || e.older(o) {
			o = e
		}
	}
	return o
}

func (s *Store) notifyLocked(ev Event) {
	for w := range s.watchers {
		select {
		case w.ch <- ev:
		default:
			// Too slow: drop the watcher, which sees its channel closed.
			delete(s.watchers, w)
			w.close()
		}
	}
}

func (w *watcher) close() { w.once.Do(func() { close(w.ch) }) }

// List returns the events that have not expired, oldest LastTimestamp
// first (kubectl's order). With kind and name set it returns the events of
// that object, with only kind set those of that kind; kind and name match
// exactly.
func (s *Store) List(kind, name string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var es []*entry
	add := func(e *entry) {
		if !s.expired(e.ev, now) {
			es = append(es, e)
		}
	}
	switch {
	case kind != "" && name != "":
		for _, e := range s.byObject[objectKey{kind, name}] {
			add(e)
		}
	default:
		for _, e := range s.byName {
			if kind == "" || e.ev.Kind == kind {
				add(e)
			}
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].older(es[j]) })
	out := make([]Event, len(es))
	for i, e := range es {
		out[i] = e.ev
	}
	return out
}

// Watch returns a channel of the events recorded from now on, new and
// updated (with their new count), and a function that stops the watch and
// closes the channel. A watcher that falls WatchBuffer events behind is
// dropped: its channel is closed early. Close closes every channel.
func (s *Store) Watch() (<-chan Event, func()) {
	w := &watcher{ch: make(chan Event, WatchBuffer)}
	s.mu.Lock()
	if s.closed {
		w.close()
	} else {
		s.watchers[w] = struct{}{}
	}
	s.mu.Unlock()
	return w.ch, func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
		w.close()
	}
}

// Forget removes every event of the object kind/name. Events outlive their
// object until they expire, as in Kubernetes, so deleting a resource
// should not call Forget; it is for tests and cleanup.
func (s *Store) Forget(kind, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.byObject[objectKey{kind, name}] {
		s.removeLocked(e)
	}
}

// Close stops recording, closes the watch channels and closes the kvlog
// (writing its snapshot). Later events are dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for w := range s.watchers {
		w.close()
	}
	clear(s.watchers)
	s.mu.Unlock()
	return s.kv.Close()
}

// Describe returns how kubectl prints e at time now: its age (since
// LastTimestamp, like duration.HumanDuration: "45s", "3m20s", "5h") and,
// for a repeated event, "x<Count> over <age of FirstTimestamp>" (else "").
// A missing timestamp prints as "<unknown>".
func Describe(e Event, now time.Time) (age string, countText string) {
	last, first := e.LastTimestamp, e.FirstTimestamp
	if last.IsZero() {
		last = first
	}
	if first.IsZero() {
		first = last
	}
	age = since(last, now)
	if e.Count > 1 {
		countText = fmt.Sprintf("x%d over %s", e.Count, since(first, now))
	}
	return age, countText
}

func since(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// eventName returns "<kind>.<name>.<hash>", lower-case, with characters
// other than [a-z0-9.-] replaced by '-'. The hash covers type, reason and
// message, and also kind and name when they do not survive that mapping,
// so that distinct objects get distinct names.
func eventName(kind, name, eventType, reason, msg string) string {
	k, n := dnsish(kind), dnsish(name)
	h := sha256.New()
	if k != strings.ToLower(kind) || n != name {
		fmt.Fprintf(h, "%s\x00%s\x00", kind, name)
	}
	fmt.Fprintf(h, "%s\x00%s\x00%s", eventType, reason, msg)
	return k + "." + n + "." + hex.EncodeToString(h.Sum(nil)[:8])
}

func dnsish(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, s)
}

// truncate cuts s to at most n bytes, on a rune boundary, ending in "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
