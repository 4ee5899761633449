// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package kubeagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// Publisher writes back what the host does with the objects it read from
// the API server: each status to the object's status subresource (the
// store's statuses, coalesced and retried with backoff by the engine's
// queue) and each event to events.k8s.io/v1, regarding the object.
type Publisher struct {
	store    *resources.Store
	source   *Source
	dyn      dynamic.Interface
	client   kubernetes.Interface
	host     string
	log      logr.Logger
	ctrl     *reconcile.TypedController[resources.Key]
	mu       sync.Mutex
	written  map[resources.Key]string // the status last written, as JSON
	observed map[resources.Key]int64  // the cluster generation last reconciled
}

// NewPublisher returns a publisher; SetupWithEngine starts its status
// queue, Run its event loop.
func NewPublisher(store *resources.Store, source *Source, dyn dynamic.Interface, client kubernetes.Interface, host string, log logr.Logger) *Publisher {
	return &Publisher{store: store, source: source, dyn: dyn, client: client, host: host, log: log, written: map[resources.Key]string{}, observed: map[resources.Key]int64{}}
}

// SetupWithEngine registers the status queue (named kube-status in the
// engine's metrics) and subscribes it to every status change.
func (p *Publisher) SetupWithEngine(e *reconcile.Engine) error {
	// Failed writes (the API server away) are retried at most every 30 s,
	// so statuses reach it soon after it returns.
	c, err := reconcile.Register(e, "kube-status", reconcile.TypedFunc[resources.Key](p.publishStatus), reconcile.TypedControllerOptions[resources.Key]{
		MaxConcurrentReconciles: 2, RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[resources.Key](100*time.Millisecond, 30*time.Second)})
	if err != nil {
		return err
	}
	p.ctrl = c
	p.source.OnRef(func(r Ref) { c.Add(resources.Key{Kind: r.Kind.Kind, Name: r.Name}) })
	p.store.Subscribe("", false, func(ch *resources.Change) {
		if ch.Type != resources.Deleted {
			c.Add(ch.Key)
		} else {
			p.mu.Lock()
			delete(p.written, ch.Key)
			delete(p.observed, ch.Key)
			p.mu.Unlock()
		}
	})
	return nil
}

// publishStatus writes one object's status to its status subresource.
func (p *Publisher) publishStatus(ctx context.Context, key resources.Key) (reconcile.Result, error) {
	o, ok := p.store.View(key.Kind, key.Name)
	if !ok {
		return reconcile.Result{}, nil
	}
	origin, ok := originOf(o)
	if !ok {
		return reconcile.Result{}, nil // a local file's resource
	}
	ref, ok := p.source.Ref(origin)
	if !ok {
		// Read from the checkpoint; the informers have not seen it yet.
		return reconcile.Result{RequeueAfter: heartbeat}, nil
	}
	status, err := statusOf(o)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	// observedGeneration is the cluster's generation of the spec the
	// controller last reconciled: it moves on only once the store's own
	// observedGeneration reached the resource's generation.
	meta := o.GetObjectMeta()
	p.mu.Lock()
	if o.GetCommonStatus().ObservedGeneration == meta.Generation {
		if g, err := strconv.ParseInt(meta.Annotations[AnnotationGeneration], 10, 64); err == nil {
			p.observed[key] = g
		}
	}
	status["observedGeneration"] = p.observed[key]
	p.mu.Unlock()
	b, err := json.Marshal(status)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	written := string(ref.UID) + string(b)
	p.mu.Lock()
	same := p.written[key] == written
	p.mu.Unlock()
	if same {
		return reconcile.Result{}, nil
	}
	err = replaceStatus(ctx, p.dyn.Resource(GVR(ref.Kind)).Namespace(ref.Namespace), ref.Name, json.RawMessage(b))
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil // deleted meanwhile: the source hears of it
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("write the status of %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	p.mu.Lock()
	p.written[key] = written
	p.mu.Unlock()
	return reconcile.Result{}, nil
}

// replaceStatus replaces an object's whole status through its status
// subresource (a JSON patch: a merge patch would keep fields the new
// status no longer has).
func replaceStatus(ctx context.Context, res dynamic.ResourceInterface, name string, status any) error {
	patch, err := json.Marshal([]map[string]any{{"op": "add", "path": "/status", "value": status}})
	if err != nil {
		return err
	}
	_, err = res.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "reconciled"}, "status")
	return err
}

// statusOf is an object's status as a JSON object.
func statusOf(o v1alpha1.Object) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var v struct {
		Status map[string]any `json:"status"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v.Status == nil {
		v.Status = map[string]any{}
	}
	return v.Status, nil
}

// Run copies the daemon's events about objects from the API server to
// events.k8s.io/v1 until ctx is done: a new event is created, a repeated
// one updates its series (count and last time), as client-go's recorder
// does. Events while the API server is away are dropped (they stay in the
// daemon's own event store).
func (p *Publisher) Run(ctx context.Context, evStore *events.Store) error {
	ch, stop := evStore.Watch()
	defer func() { stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				ch, stop = evStore.Watch()
				continue
			}
			if err := p.publishEvent(ctx, ev); err != nil {
				p.log.V(1).Info("cannot write an event to the API server", "error", err.Error())
			}
		}
	}
}

func (p *Publisher) publishEvent(ctx context.Context, ev events.Event) error {
	o, ok := p.store.View(ev.Kind, ev.ObjectName)
	if !ok {
		return nil
	}
	origin, ok := originOf(o)
	if !ok {
		return nil
	}
	ref, ok := p.source.Ref(origin)
	if !ok {
		return nil
	}
	h := sha256.Sum256([]byte(ev.Name + string(ref.UID)))
	name := strings.ToLower(ref.Name) + "." + hex.EncodeToString(h[:8])
	api := p.client.EventsV1().Events(ref.Namespace)
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	now := metav1.NowMicro()
	if ev.Count > 1 {
		existing, err := api.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			// An event's note cannot change; its series can.
			existing.Series = &eventsv1.EventSeries{Count: ev.Count, LastObservedTime: now}
			_, err = api.Update(ctx, existing, metav1.UpdateOptions{})
			return err
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	_, err := api.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ref.Namespace},
		EventTime:  now, ReportingController: "reconciled.dev/agent", ReportingInstance: p.host,
		Action: ev.Reason, Reason: ev.Reason, Type: ev.Type, Note: ev.Message,
		Regarding: corev1.ObjectReference{APIVersion: v1alpha1.APIVersion, Kind: ref.Kind.Kind, Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// eventTimeout bounds one write of an event.
const eventTimeout = 10 * time.Second
