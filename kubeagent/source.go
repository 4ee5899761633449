// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kubeagent makes the daemon the agent of a host in a Kubernetes
// API server, as the kubelet is for pods (reconciled --kube KUBECONFIG
// --host NAME): a resources.Source that list/watches the host's objects
// (labelled reconciled.dev/host=NAME) and checkpoints them in the state
// dir, so the host runs them when the API server is away; publishers of
// status (the status subresource) and events (events.k8s.io/v1); a
// heartbeat (a Lease renewed every 10 s and the cluster-scoped Host
// object); and the hub (--kube-hub, one active through a Lease election),
// which expands templates per Host and marks hosts whose Lease expired.
package kubeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/resources"
)

// Prefix starts the origins of the Kubernetes source in the store (and in
// the reconciled.dev/source annotation): kube:NAMESPACE/PLURAL/NAME.
const Prefix = "kube:"

// GVR is the resource of a kind in the API server.
func GVR(k v1alpha1.KindInfo) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: k.Plural}
}

// hostsGVR is the resource of the cluster's Host objects.
var hostsGVR = schema.GroupVersionResource{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: "hosts"}

// hostKinds are the kinds a host applies from the API server: all but
// Host (the cluster's machines, which the heartbeat writes).
func hostKinds() []v1alpha1.KindInfo {
	var out []v1alpha1.KindInfo
	for _, k := range v1alpha1.Kinds {
		if k.Kind != v1alpha1.KindHost {
			out = append(out, k)
		}
	}
	return out
}

// Ref is what the agent knows of an object it read: where it is, its UID
// (events name it) and the generation of the spec it applies.
type Ref struct {
	Kind       v1alpha1.KindInfo
	Namespace  string
	Name       string
	UID        types.UID
	Generation int64
}

// SourceOptions configure a Source.
type SourceOptions struct {
	// Client reaches the API server.
	Client dynamic.Interface
	// Host is this host's name: objects labelled reconciled.dev/host=Host
	// are its own.
	Host string
	// Namespace limits the watch to one namespace ("" for all).
	Namespace string
	// Dir keeps the checkpoint: one file per object, the last state seen.
	Dir string
	// Log receives the source's messages.
	Log logr.Logger
}

// Source is the resources.Source of a host's objects in a Kubernetes API
// server. Its origins are files of the checkpoint folder, written from the
// informers' events: the store always reads the last state seen, from the
// API server or, after a restart while it is away, from the checkpoint. A
// watch error or a partition changes nothing; an object goes only when
// the API server says so (a delete, a relabel, or a complete list that no
// longer has it).
type Source struct {
	opts SourceOptions

	mu     sync.Mutex
	refs   map[string]Ref // by origin, from the informers
	synced bool
	err    string            // the last list/watch error, "" when fine
	onRef  func(Ref)         // told of each object new to the informers
	docs   map[string][]byte // by origin, the document last checkpointed
}

// setDoc remembers the document checkpointed for origin o.
func (s *Source) setDoc(o string, doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[o] = doc
}

// OnRef has fn told of each object the informers bring that is new to
// them (also one deleted and created again under the same name).
func (s *Source) OnRef(fn func(Ref)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRef = fn
}

// NewSource returns a source; it reads the checkpoint until Watch has
// heard from the API server.
func NewSource(o SourceOptions) (*Source, error) {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("kube checkpoint: %w", err)
	}
	return &Source{opts: o, refs: map[string]Ref{}, docs: map[string][]byte{}}, nil
}

// Name implements resources.Source.
func (s *Source) Name() string { return "kube" }

// origin is the origin of an object: NAMESPACE/PLURAL/NAME.
func origin(k v1alpha1.KindInfo, ns, name string) string { return ns + "/" + k.Plural + "/" + name }

// file is the checkpoint file of an origin ('_' is in no Kubernetes name).
func (s *Source) file(origin string) string {
	return filepath.Join(s.opts.Dir, strings.ReplaceAll(origin, "/", "_")+".yaml")
}

// List implements resources.Source: the checkpoint's objects.
func (s *Source) List() ([]string, []resources.Problem, error) {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && strings.Count(name, "_") == 2 {
			out = append(out, strings.ReplaceAll(name, "_", "/"))
		}
	}
	return out, nil, nil
}

// Read implements resources.Source.
func (s *Source) Read(origin string) ([]byte, bool, error) {
	b, err := os.ReadFile(s.file(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// Ref returns what the informers said of the object at origin (without
// the kube: prefix); false before they did.
func (s *Source) Ref(origin string) (Ref, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refs[origin]
	return r, ok
}

// Status reports whether the source has listed the API server, and its
// last error.
func (s *Source) Status() (synced bool, err string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced, s.err
}

// Watch implements resources.Source: it runs an informer per kind on the
// host's objects and keeps the checkpoint in step with them.
func (s *Source) Watch(ctx context.Context, changed func(string), relist func()) error {
	sel := v1alpha1.LabelHost + "=" + s.opts.Host
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.opts.Client, 0, s.opts.Namespace, func(o *metav1.ListOptions) { o.LabelSelector = sel })
	var synced []cache.InformerSynced
	var informers []cache.SharedIndexInformer
	for _, k := range hostKinds() {
		inf := factory.ForResource(GVR(k)).Informer()
		inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			s.mu.Lock()
			s.err = err.Error()
			s.mu.Unlock()
			s.opts.Log.V(1).Info("watch failed; running the last state seen", "kind", k.Kind, "error", err.Error())
		})
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.put(k, obj, changed) },
			UpdateFunc: func(_, obj any) { s.put(k, obj, changed) },
			DeleteFunc: func(obj any) { s.remove(k, obj, changed) },
		})
		synced = append(synced, inf.HasSynced)
		informers = append(informers, inf)
	}
	factory.Start(ctx.Done())
	relist()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		factory.Shutdown()
		return nil // ctx done
	}
	// A complete list: checkpointed objects it lacks were deleted (or
	// relabelled) while the host was away. The files are listed first:
	// one an informer writes meanwhile is not taken for stale.
	stale, _, _ := s.List()
	have := map[string]bool{}
	for i, k := range hostKinds() {
		for _, obj := range informers[i].GetStore().List() {
			u := obj.(*unstructured.Unstructured)
			have[origin(k, u.GetNamespace(), u.GetName())] = true
		}
	}
	for _, o := range stale {
		if !have[o] {
			s.opts.Log.Info("object deleted while the host was away", "origin", o)
			if err := os.Remove(s.file(o)); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.opts.Log.Error(err, "checkpoint")
			}
			changed(o)
		}
	}
	s.mu.Lock()
	s.synced, s.err = true, ""
	s.mu.Unlock()
	s.opts.Log.Info("listed the API server", "objects", len(have))
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

// put checkpoints an added or changed object and tells the store.
func (s *Source) put(k v1alpha1.KindInfo, obj any, changed func(string)) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	o := origin(k, u.GetNamespace(), u.GetName())
	ref := Ref{Kind: k, Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(), Generation: u.GetGeneration()}
	s.mu.Lock()
	old, known := s.refs[o]
	s.refs[o] = ref
	s.err = ""
	onRef := s.onRef
	s.mu.Unlock()
	if onRef != nil && (!known || old.UID != ref.UID) {
		// A new object (or one deleted and created again, which the
		// store may not see as a change): its status is written anew.
		onRef(ref)
	}
	doc, err := document(u)
	if err != nil {
		s.opts.Log.Error(err, "cannot render an object", "origin", o)
		return
	}
	// Most updates are the statuses this host writes coming back: the
	// document is compared with the last one written (from memory; from
	// the file once after a restart), and only a change is written.
	s.mu.Lock()
	last, ok := s.docs[o]
	s.mu.Unlock()
	if !ok {
		last, _ = os.ReadFile(s.file(o))
	}
	if bytes.Equal(last, doc) {
		s.setDoc(o, doc)
		return
	}
	if err := atomicfile.Write(s.file(o), doc, 0o600); err != nil {
		s.opts.Log.Error(err, "checkpoint", "origin", o)
		return
	}
	s.setDoc(o, doc)
	changed(o)
}

// remove forgets a deleted (or no longer selected) object.
func (s *Source) remove(k v1alpha1.KindInfo, obj any, changed func(string)) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	o := origin(k, u.GetNamespace(), u.GetName())
	s.mu.Lock()
	delete(s.refs, o)
	delete(s.docs, o)
	s.mu.Unlock()
	if err := os.Remove(s.file(o)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.opts.Log.Error(err, "checkpoint", "origin", o)
	}
	atomicfile.SyncDir(s.opts.Dir)
	changed(o)
}

// AnnotationGeneration carries, on a resource read from the API server,
// the object's metadata.generation there: the status written back says
// which one the host has applied (observedGeneration).
const AnnotationGeneration = "reconciled.dev/generation"

// document is the resource document of an object, as a file would hold
// it: apiVersion, kind, name, labels, the annotations but kubectl's copy
// of the last applied object, the generation (AnnotationGeneration), and
// spec.
func document(u *unstructured.Unstructured) ([]byte, error) {
	meta := map[string]any{"name": u.GetName()}
	if l := u.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	ann := map[string]string{AnnotationGeneration: strconv.FormatInt(u.GetGeneration(), 10)}
	for k, v := range u.GetAnnotations() {
		if k != "kubectl.kubernetes.io/last-applied-configuration" && k != AnnotationGeneration {
			ann[k] = v
		}
	}
	meta["annotations"] = ann
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta}
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	return yaml.Marshal(doc)
}

// originOf returns the origin (without the prefix) of a store object read
// from this source, from its reconciled.dev/source annotation
// (kube:NS/PLURAL/NAME:LINE); false for other sources.
func originOf(o v1alpha1.Object) (string, bool) {
	src, ok := strings.CutPrefix(o.GetObjectMeta().Annotations[resources.AnnotationSource], Prefix)
	if !ok {
		return "", false
	}
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		src = src[:i]
	}
	return src, strings.Count(src, "/") == 2
}

// heartbeat is how often the Lease is renewed.
const heartbeat = 10 * time.Second
