// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package resources is the file-backed resource store: it decodes resource
// files strictly, watches the directory, keeps generations, and writes status
// back into the files without touching any other byte.
package resources

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
)

// StatusMode says where status is written.
type StatusMode string

// Status modes (the --status flag).
const (
	// StatusInline writes status into the resource's own document.
	StatusInline StatusMode = "inline"
	// StatusSidecar writes <state-dir>/status/<kind>/<name>.yaml.
	StatusSidecar StatusMode = "sidecar"
	// StatusNone writes nothing.
	StatusNone StatusMode = "none"
)

// AnnotationSource is added to objects served by the API (never written to
// files): the file and line that define the resource.
const AnnotationSource = "reconciled.dev/source"

// ConditionStatusWritten is present, False, on a resource (in the API only)
// while its status cannot be written to its file.
const ConditionStatusWritten = "StatusWritten"

// ReasonWriteFailed is the reason of the StatusWritten condition.
const ReasonWriteFailed = "WriteFailed"

// ReasonDeleted is the reason of the event recorded when a resource is
// deleted.
const ReasonDeleted = "Deleted"

// ErrNotFound is returned for a kind and name the store does not hold.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned (wrapped) by a controller for an action its
// resource cannot take in its current state (a power cycle of a PiNode
// kept off); the API answers 409 Conflict.
var ErrConflict = errors.New("conflict")

// Key identifies a resource.
type Key struct{ Kind, Name string }

// String returns "kind/name" in lower case, as the CLI prints it.
func (k Key) String() string { return strings.ToLower(k.Kind) + "/" + k.Name }

// Problem is an input problem not attached to a stored resource: a file
// that does not parse, a document without kind or name, or a duplicate.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Name    string `json:"name,omitempty"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Locate returns where the problem is, as FILE:LINE (or FILE), and its
// message without that prefix: messages usually start with the exact
// line, which may differ from the document's line in Line.
func (p Problem) Locate() (where, message string) {
	where, message = p.File, p.Message
	if p.Line > 0 {
		where = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if rest, ok := strings.CutPrefix(message, p.File+":"); ok {
		if line, text, ok := strings.Cut(rest, ": "); ok && line != "" && strings.Trim(line, "0123456789") == "" {
			return p.File + ":" + line, text
		}
	}
	if rest, ok := strings.CutPrefix(message, p.File+": "); ok {
		return where, rest
	}
	return where, message
}

// Options configures a Store.
type Options struct {
	// Dir is the watched resource directory: the source when Source is
	// nil, and where the API writes resources ("" with a Source that has
	// no folder).
	Dir string
	// Source is where documents come from (default: a DirSource of Dir).
	Source Source
	// Host is this machine's name in the fleet: its labels decide which
	// resources with a reconciled.dev/hosts selector apply (see hosts.go).
	// Empty: every resource applies.
	Host string
	// StateDir holds generation records and sidecar status; empty keeps
	// generations in memory (offline use by reconcilectl).
	StateDir string
	// Status selects inline (default), sidecar or none.
	Status StatusMode
	// RelistInterval is the period of the full rescan (default 5m).
	RelistInterval time.Duration
	// DeleteGrace is how long a resource must stay missing from its file
	// (or its file stay missing) before it is deleted (default 1s): an
	// editor's save in two steps, or a checkout, deletes nothing.
	DeleteGrace time.Duration
	// SettleAfterChange is how long the store waits before writing back a
	// status the file lost in an edit that also changed the resource
	// (default 100ms): the controller is about to publish a new one.
	SettleAfterChange time.Duration
	// Log receives store events.
	Log logr.Logger
	// Events, when set, records a Deleted event for every resource deleted.
	Events events.Recorder
	// AllowInsecureFiles reads files that belong to other users or are
	// writable by group or others (--allow-insecure-files).
	AllowInsecureFiles bool
}

// EventType is the kind of change a watcher sees.
type EventType string

// Watch event types, as in the Kubernetes watch API.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change seen by a watcher. Object is the API view.
type Event struct {
	Type   EventType       `json:"type"`
	Object v1alpha1.Object `json:"object"`
}

// Store holds every resource found in the directory.
type Store struct {
	opts Options
	log  logr.Logger

	mu      sync.RWMutex
	entries map[Key]*entry
	files   map[string]*fileState
	// loadWinners, during Load, names the file that gets each name
	// defined more than once.
	loadWinners map[Key]string
	subs        map[*subscription]struct{}
	// rv counts changes (the API's resourceVersion); tombstones are the
	// recent deletions, for a watch that resumes from a version.
	rv         uint64
	firstRV    uint64 // where rv started; older versions are Gone
	tombstones tombstones
	gens       *generations

	writer *statusWriter
	reload func(path string) // queues a file for reloading; set by Run
	busy   inProgress        // files being loaded
	// linkProblems are the symlinked folders the last scan skipped.
	linkProblems []Problem
	// hostLabels are this host's labels (Options.Host; see hosts.go).
	hostLabels labels.Set
}

type entry struct {
	key        Key
	file       string
	line       int
	rev        string          // the source's revision the document was read at
	obj        v1alpha1.Object // last valid object with current status; nil if never valid
	specHash   string
	statusJSON []byte
	statusSet  bool // a controller has set status since the daemon started
	invalid    []*Error
	invalidAt  metav1.Time
	// writeErr is why the status cannot be written to its file, while
	// that lasts (shown as the StatusWritten condition).
	writeErr string
	// what the file holds, to write only on change: a digest of its status
	// JSON (zero when it has none), not a copy, to keep 10,000 resources small
	fileStatus [32]byte
	fileGen    int64
	// rv is the store's change counter at this entry's last change.
	rv uint64
}

type fileState struct {
	hash     [32]byte
	keys     []Key
	problems []Problem
	// unparsable is set while the file is not valid YAML: status waits.
	unparsable bool
	// incomplete is set while a document of the file has no kind or name.
	incomplete bool
	// deleteAfter is set while resources of the file are missing: they
	// are deleted if still missing then.
	deleteAfter time.Time
	// logged holds the problems logged for the file's current content.
	logged map[string]bool
}

// NewStore returns an empty store. Load fills it; Start keeps it current.
func NewStore(opts Options) (*Store, error) {
	if opts.Status == "" {
		opts.Status = StatusInline
	}
	sink, err := newStatusSink(opts.Status, opts.StateDir)
	if err != nil {
		return nil, err
	}
	if opts.RelistInterval == 0 {
		opts.RelistInterval = 5 * time.Minute
	}
	if opts.DeleteGrace == 0 {
		opts.DeleteGrace = time.Second
	}
	if opts.SettleAfterChange == 0 {
		opts.SettleAfterChange = 100 * time.Millisecond
	}
	if opts.Dir != "" || opts.Source == nil {
		dir, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, err
		}
		opts.Dir = dir
	}
	if opts.Source == nil {
		opts.Source = NewDirSource(opts.Dir, opts.AllowInsecureFiles, opts.Log)
	}
	genPath := ""
	if opts.StateDir != "" {
		genPath = filepath.Join(opts.StateDir, "generations.json")
	}
	gens, err := loadGenerations(genPath, func(err error) {
		opts.Log.Error(err, "generation records were corrupt; generations start over")
		if opts.Events != nil {
			opts.Events.Eventf("Daemon", "state", events.TypeWarning, events.ReasonStateSetAside, "%v", err)
		}
	})
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:    opts,
		log:     opts.Log,
		entries: map[Key]*entry{},
		files:   map[string]*fileState{},
		subs:    map[*subscription]struct{}{},
		// Versions continue from the clock: one from before a restart is
		// older than any of this run, and Gone (the client lists again).
		rv:   firstVersion(),
		gens: gens,
	}
	s.firstRV = s.rv
	if opts.Host != "" {
		s.hostLabels = hostLabels(opts.Host, nil)
	}
	s.writer = newStatusWriter(s, sink)
	return s, nil
}

// Dir returns the absolute resource directory.
func (s *Store) Dir() string { return s.opts.Dir }

// Source returns where the store's documents come from.
func (s *Store) Source() Source { return s.opts.Source }

// Get returns the last valid version of a resource, with its current
// status, or false when there is none. The object must not be modified.
func (s *Store) Get(kind, name string) (v1alpha1.Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.entries[Key{kind, name}]
	if e == nil || e.obj == nil {
		return nil, false
	}
	return e.obj, true
}

// Known reports whether the store has any entry for kind/name, valid or
// not: a resource whose only version failed to decode is known but Get
// does not return it.
func (s *Store) Known(kind, name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries[Key{kind, name}] != nil
}

// Settled reports whether every file parsed and every document in it named
// its kind and name. Until then, a resource missing from the store may be
// in a file that does not parse: it must not be treated as deleted.
func (s *Store) Settled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.files {
		if f.unparsable || f.incomplete {
			return false
		}
	}
	return true
}

// Names returns the names of every valid resource of a kind.
func (s *Store) Names(kind string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for k, e := range s.entries {
		if k.Kind == kind && e.obj != nil {
			names = append(names, k.Name)
		}
	}
	sort.Strings(names)
	return names
}

// View returns the API view of a resource: its status with a Ready=False
// InvalidSpec condition while its file is invalid, and the source
// annotation. Resources that never decoded are included as bare objects.
func (s *Store) View(kind, name string) (v1alpha1.Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.entries[Key{kind, name}]
	if e == nil {
		return nil, false
	}
	return e.view(true), true
}

// List returns the API views of every resource of a kind, sorted by name.
func (s *Store) List(kind string) []v1alpha1.Object {
	out, _ := s.ListVersion(kind)
	return out
}

// ListVersion is List and the store's resourceVersion it reflects: a
// watch from that version misses nothing.
func (s *Store) ListVersion(kind string) ([]v1alpha1.Object, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []v1alpha1.Object
	for k, e := range s.entries {
		if k.Kind == kind {
			out = append(out, e.view(true))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetObjectMeta().Name < out[j].GetObjectMeta().Name })
	return out, strconv.FormatUint(s.rv, 10)
}

// Problems returns the input problems not attached to a stored resource.
func (s *Store) Problems() []Problem { return s.problems(false) }

// AllProblems returns every input problem: Problems, and the invalid new
// versions of stored resources (whose last good version keeps running).
func (s *Store) AllProblems() []Problem { return s.problems(true) }

func (s *Store) problems(attached bool) []Problem {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Clone(s.linkProblems)
	for _, f := range s.files {
		out = append(out, f.problems...)
	}
	if attached {
		for k, e := range s.entries {
			for _, err := range e.invalid {
				out = append(out, Problem{File: err.File, Line: err.Line, Kind: k.Kind, Name: k.Name, Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out
}

// Counts returns the number of resources per kind and phase ("Invalid" for
// invalid ones, "" when no status was set), and the number of invalid inputs.
func (s *Store) Counts() (byKindPhase map[Key]int, invalid int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byKindPhase = map[Key]int{}
	for k, e := range s.entries {
		phase := ""
		if e.obj != nil {
			phase = e.obj.GetCommonStatus().Phase
		}
		if len(e.invalid) > 0 {
			phase = "Invalid"
			invalid++
		}
		byKindPhase[Key{k.Kind, phase}]++
	}
	for _, f := range s.files {
		invalid += len(f.problems)
	}
	invalid += len(s.linkProblems)
	return byKindPhase, invalid
}

// UpdateStatus replaces a resource's status with status, a value of the
// kind's Status type. Nothing happens when the content is unchanged;
// otherwise watchers see MODIFIED and the status is written out
// asynchronously per the status mode.
func (s *Store) UpdateStatus(kind, name string, status any) error {
	return s.updateStatus(kind, name, status, 0)
}

// UpdateTransientStatus is UpdateStatus for a state expected to pass
// quickly (a program stopping to be restarted): the API and watchers see it
// at once, but it is written to the file only if it is still current after
// settle, so a quick stop-and-start costs one file write, not two.
func (s *Store) UpdateTransientStatus(kind, name string, status any, settle time.Duration) error {
	return s.updateStatus(kind, name, status, settle)
}

func (s *Store) updateStatus(kind, name string, status any, settle time.Duration) error {
	b, err := json.Marshal(status)
	if err != nil {
		return fmt.Errorf("marshal status of %s/%s: %w", kind, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[Key{kind, name}]
	if e == nil || e.obj == nil {
		return fmt.Errorf("%s/%s: %w", kind, name, ErrNotFound)
	}
	e.statusSet = true
	if bytes.Equal(b, e.statusJSON) {
		return nil
	}
	e.obj = e.obj.WithStatus(status)
	e.statusJSON = b
	s.notifyLocked(Modified, e, false)
	if settle > 0 {
		s.writer.markDirtyAt(e, time.Now().Add(settle))
	} else {
		s.writer.markDirty(e)
	}
	return nil
}

// view builds the API (or file) view of an entry; see Store.View.
func (e *entry) view(withSource bool) v1alpha1.Object {
	obj := e.obj
	if obj == nil {
		ki, _ := v1alpha1.LookupKind(e.key.Kind)
		obj = ki.New()
		obj.GetObjectMeta().Name = e.key.Name
	}
	if len(e.invalid) == 0 && !withSource {
		return obj
	}

	st := reflect.ValueOf(obj.GetStatus()).Elem().Interface()
	v := obj.WithStatus(st)
	if len(e.invalid) > 0 {
		cs := v.GetCommonStatus()
		cs.Conditions = slices.Clone(cs.Conditions)
		msgs := make([]string, len(e.invalid))
		for i, err := range e.invalid {
			msgs[i] = err.Error()
		}
		cs.SetCondition(v1alpha1.Condition{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonInvalidSpec,
			Message: strings.Join(msgs, "; "), LastTransitionTime: e.invalidAt, ObservedGeneration: obj.GetObjectMeta().Generation,
		})
	}
	if e.writeErr != "" && withSource {
		cs := v.GetCommonStatus()
		cs.Conditions = slices.Clone(cs.Conditions)
		cs.SetCondition(v1alpha1.Condition{
			Type: ConditionStatusWritten, Status: metav1.ConditionFalse, Reason: ReasonWriteFailed,
			Message: e.writeErr, LastTransitionTime: metav1.Now(), ObservedGeneration: obj.GetObjectMeta().Generation,
		})
	}
	if withSource {
		// Copy metadata so the shared object is not modified.
		meta := *v.GetObjectMeta()
		ann := make(map[string]string, len(meta.Annotations)+1)
		for k, val := range meta.Annotations {
			ann[k] = val
		}
		ann[AnnotationSource] = fmt.Sprintf("%s:%d", e.file, e.line)
		if e.rev != "" {
			ann[AnnotationSource] = e.rev + ":" + ann[AnnotationSource]
		}
		meta.Annotations = ann
		meta.ResourceVersion = strconv.FormatUint(e.rv, 10)
		*v.GetObjectMeta() = meta
	}
	return v
}

// hashBytes is the content hash used to recognise unchanged files and the
// daemon's own writes.
func hashBytes(b []byte) [32]byte { return sha256.Sum256(b) }

// statusDigest is the digest kept in entry.fileStatus: zero for no status.
func statusDigest(statusJSON []byte) [32]byte {
	if statusJSON == nil {
		return [32]byte{}
	}
	return hashBytes(statusJSON)
}

// MaxFileSize is the largest resource file the daemon reads. A larger file
// is reported as invalid (what it defined keeps running), and the status
// writer never grows a file past it.
const MaxFileSize = 8 << 20
