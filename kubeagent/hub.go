// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package kubeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Hub is the cluster-wide controller one agent runs (--kube-hub; several
// may, one leads through the reconciled-hub Lease): it expands templates
// (objects with the reconciled.dev/hosts selector annotation) into a copy
// per matching Host, labelled for that host, and keeps their count in the
// template's status; and it marks a Host NotReady when its Lease expires,
// as the node lifecycle controller does for Nodes.
type Hub struct {
	Client   kubernetes.Interface
	Dyn      dynamic.Interface
	Identity string // this agent's host name
	Log      logr.Logger
	// Resync is how often the hub goes over everything even when nothing
	// changed (Lease expiry is noticed then); default 2 s.
	Resync time.Duration
}

// Run campaigns for the hub's Lease and, while leading, runs the hub,
// until ctx is done.
func (h *Hub) Run(ctx context.Context) error {
	if h.Resync == 0 {
		h.Resync = 2 * time.Second
	}
	lock := &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Name: "reconciled-hub", Namespace: LeaseNamespace},
		Client: h.Client.CoordinationV1(), LockConfig: resourcelock.ResourceLockConfig{Identity: h.Identity}}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			ReleaseOnCancel: true, Name: "reconciled-hub",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					h.Log.Info("leading the hub")
					h.lead(ctx)
				},
				OnStoppedLeading: func() { h.Log.Info("no longer leading the hub") },
			},
		})
	}
	return nil
}

// lead runs the hub's loop while this agent leads.
func (h *Hub) lead(ctx context.Context) {
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(h.Dyn, 0)
	kinds := hostKinds()
	objs := make([]cache.SharedIndexInformer, len(kinds))
	trigger := make(chan struct{}, 1)
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { nudge(trigger) },
		UpdateFunc: func(any, any) { nudge(trigger) },
		DeleteFunc: func(any) { nudge(trigger) },
	}
	for i, k := range kinds {
		objs[i] = dyn.ForResource(GVR(k)).Informer()
		objs[i].AddEventHandler(poke)
	}
	hosts := dyn.ForResource(hostsGVR).Informer()
	hosts.AddEventHandler(poke)
	typed := informers.NewSharedInformerFactoryWithOptions(h.Client, 0, informers.WithNamespace(LeaseNamespace))
	leases := typed.Coordination().V1().Leases().Lister()
	cluster := informers.NewSharedInformerFactory(h.Client, 0)
	namespaces := cluster.Core().V1().Namespaces()
	namespaces.Informer().AddEventHandler(poke)
	for _, f := range []interface {
		Start(<-chan struct{})
		Shutdown()
	}{dyn, typed, cluster} {
		f.Start(ctx.Done())
		defer f.Shutdown()
	}
	dyn.WaitForCacheSync(ctx.Done())
	typed.WaitForCacheSync(ctx.Done())
	cluster.WaitForCacheSync(ctx.Done())
	// Templates are read only from namespaces the cluster's administrator
	// labelled for them: whoever may write one host's namespace must not
	// reach the others through the hub.
	templatesIn := func(ns string) bool {
		n, err := namespaces.Lister().Get(ns)
		return err == nil && n.Labels[LabelTemplates] == "true"
	}
	t := time.NewTicker(h.Resync)
	defer t.Stop()
	// When the hub saw each Lease renewed, by its own clock (as the node
	// lifecycle controller does): a hub that starts, or an API server that
	// comes back, gives every host a whole Lease duration to renew,
	// whatever the renewTime says; clocks of hosts need not agree.
	type seen struct {
		renew    time.Time
		observed time.Time
	}
	observed := map[string]seen{}
	started := time.Now()
	for ctx.Err() == nil {
		hostList := unstructuredOf(hosts.GetStore().List())
		h.expireLeases(ctx, hostList, func(name string) (time.Time, bool) {
			d := leaseDuration
			var renew time.Time
			if l, err := leases.Leases(LeaseNamespace).Get(name); err == nil && l.Spec.RenewTime != nil {
				renew = l.Spec.RenewTime.Time
				if l.Spec.LeaseDurationSeconds != nil {
					d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
				}
			}
			s, ok := observed[name]
			if !ok || !s.renew.Equal(renew) {
				s = seen{renew: renew, observed: time.Now()}
				if !ok {
					s.observed = started
				}
				observed[name] = s
			}
			return s.observed.Add(d), !renew.IsZero()
		})
		for i, k := range kinds {
			if err := h.expand(ctx, k, unstructuredOf(objs[i].GetStore().List()), hostList, templatesIn); err != nil {
				h.Log.Error(err, "expanding templates", "kind", k.Kind)
			}
		}
		select {
		case <-ctx.Done():
		case <-trigger:
		case <-t.C:
		}
	}
}

// nudge wakes the hub's loop (at most one wake-up waits).
func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func unstructuredOf(list []any) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(list))
	for _, o := range list {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

// expireLeases marks NotReady every Ready Host whose Lease expired (or
// which has none).
func (h *Hub) expireLeases(ctx context.Context, hosts []*unstructured.Unstructured, expiry func(string) (time.Time, bool)) {
	for _, host := range hosts {
		ready := readyOf(host)
		if ready == nil || ready.Status != metav1.ConditionTrue {
			continue
		}
		until, ok := expiry(host.GetName())
		if time.Now().Before(until) {
			continue
		}
		msg := "no Lease"
		if ok {
			msg = fmt.Sprintf("the host's Lease expired at %s: no heartbeat", until.UTC().Format(time.RFC3339))
		}
		status, _, _ := unstructured.NestedMap(host.Object, "status")
		if status == nil {
			status = map[string]any{}
		}
		status["phase"] = "NotReady"
		status["conditions"] = []any{map[string]any{"type": v1alpha1.ConditionReady, "status": "False", "reason": "LeaseExpired", "message": msg,
			"lastTransitionTime": metav1.Now().UTC().Format(time.RFC3339)}}
		if err := replaceStatus(ctx, h.Dyn.Resource(hostsGVR), host.GetName(), status); err != nil {
			h.Log.Error(err, "marking a host NotReady", "host", host.GetName())
			continue
		}
		h.Log.Info("host not ready", "host", host.GetName(), "reason", msg)
	}
}

// expand makes the copies of kind k's templates (in namespaces
// templatesIn allows): one per matching Host (in the namespace the host's
// agent reads, else the template's), named TEMPLATE-HOST; removes copies
// whose template or host no longer match; and writes each template's
// status. A template whose selector does not parse keeps its copies as
// they are (a typo must not stop a workload everywhere) and says so in
// its status; a copy name another template's copy already has is left to
// it, and reported.
func (h *Hub) expand(ctx context.Context, k v1alpha1.KindInfo, objs, hosts []*unstructured.Unstructured, templatesIn func(string) bool) error {
	res := h.Dyn.Resource(GVR(k))
	copies := map[string]*unstructured.Unstructured{} // by namespace/name
	for _, o := range objs {
		if o.GetLabels()[v1alpha1.LabelTemplate] != "" {
			copies[o.GetNamespace()+"/"+o.GetName()] = o
		}
	}
	wanted := map[string]bool{}
	var errs []error
	for _, t := range objs {
		sel, ok := t.GetAnnotations()[v1alpha1.AnnotationHosts]
		if !ok || t.GetLabels()[v1alpha1.LabelTemplate] != "" || t.GetLabels()[v1alpha1.LabelHost] != "" || !templatesIn(t.GetNamespace()) {
			continue
		}
		parsed, err := labels.Parse(sel)
		if err != nil {
			for key, c := range copies {
				if c.GetLabels()[v1alpha1.LabelTemplate] == string(t.GetUID()) {
					wanted[key] = true
				}
			}
			if err := h.templateStatus(ctx, res.Namespace(t.GetNamespace()), t, v1alpha1.HostsStatus{},
				fmt.Sprintf("%s: %v; its copies are kept as they are", v1alpha1.AnnotationHosts, err)); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		hs := v1alpha1.HostsStatus{}
		var conflicts []string
		for _, host := range hosts {
			set := labels.Set{v1alpha1.LabelHostname: host.GetName()}
			for k, v := range host.GetLabels() {
				set[k] = v
			}
			if !parsed.Matches(set) {
				continue
			}
			want := copyOf(t, host)
			key := want.GetNamespace() + "/" + want.GetName()
			have := copies[key]
			if have != nil && have.GetLabels()[v1alpha1.LabelTemplate] != string(t.GetUID()) {
				conflicts = append(conflicts, key)
				continue // another template's copy
			}
			wanted[key] = true
			hs.Total++
			switch {
			case have == nil:
				_, err = res.Namespace(want.GetNamespace()).Create(ctx, want, metav1.CreateOptions{FieldManager: "reconciled-hub"})
				if err == nil {
					h.Log.Info("template copied to a host", "kind", k.Kind, "template", t.GetNamespace()+"/"+t.GetName(), "host", host.GetName())
				}
			case !sameCopy(have, want):
				want.SetResourceVersion(have.GetResourceVersion())
				want.Object["status"] = have.Object["status"]
				_, err = res.Namespace(want.GetNamespace()).Update(ctx, want, metav1.UpdateOptions{FieldManager: "reconciled-hub"})
			}
			if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
				errs = append(errs, err)
			}
			if have != nil && readyOf(have) != nil && readyOf(have).Status == metav1.ConditionTrue {
				hs.Ready++
			} else if len(hs.NotReady) < 20 {
				hs.NotReady = append(hs.NotReady, host.GetName())
			}
		}
		problem := ""
		if len(conflicts) > 0 {
			slices.Sort(conflicts)
			problem = fmt.Sprintf("another template's copy has the name of this one's: %s", strings.Join(conflicts, ", "))
		}
		if err := h.templateStatus(ctx, res.Namespace(t.GetNamespace()), t, hs, problem); err != nil {
			errs = append(errs, err)
		}
	}
	for key, c := range copies {
		if wanted[key] {
			continue
		}
		err := res.Namespace(c.GetNamespace()).Delete(ctx, c.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		h.Log.Info("copy removed: its template or host no longer match", "kind", k.Kind, "copy", key)
	}
	return errors.Join(errs...)
}

// copyOf is template t's copy for host.
func copyOf(t, host *unstructured.Unstructured) *unstructured.Unstructured {
	ns := t.GetNamespace()
	if hostNS, _, _ := unstructured.NestedString(host.Object, "status", "namespace"); hostNS != "" {
		ns = hostNS
	}
	lbls := map[string]string{}
	for k, v := range t.GetLabels() {
		lbls[k] = v
	}
	lbls[v1alpha1.LabelHost] = host.GetName()
	lbls[v1alpha1.LabelTemplate] = string(t.GetUID())
	ann := map[string]string{}
	for k, v := range t.GetAnnotations() {
		if k != v1alpha1.AnnotationHosts && k != "kubectl.kubernetes.io/last-applied-configuration" {
			ann[k] = v
		}
	}
	c := &unstructured.Unstructured{Object: map[string]any{"apiVersion": t.GetAPIVersion(), "kind": t.GetKind(), "spec": t.Object["spec"]}}
	c.SetName(t.GetName() + "-" + host.GetName())
	c.SetNamespace(ns)
	c.SetLabels(lbls)
	if len(ann) > 0 {
		c.SetAnnotations(ann)
	}
	if ns == t.GetNamespace() {
		// Owner references cannot cross namespaces; the hub removes
		// copies itself either way.
		c.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: t.GetAPIVersion(), Kind: t.GetKind(), Name: t.GetName(), UID: t.GetUID()}})
	}
	return c
}

// sameCopy reports whether a copy already has what the template wants.
func sameCopy(have, want *unstructured.Unstructured) bool {
	return reflect.DeepEqual(have.Object["spec"], want.Object["spec"]) && reflect.DeepEqual(have.GetLabels(), want.GetLabels()) &&
		reflect.DeepEqual(nonNil(have.GetAnnotations()), nonNil(want.GetAnnotations()))
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// templateStatus writes a template's status when it changed: hosts
// (total, ready, the hosts not ready), phase and Ready; problem, when set,
// makes it not Ready with that message (reason InvalidSpec).
func (h *Hub) templateStatus(ctx context.Context, res dynamic.ResourceInterface, t *unstructured.Unstructured, hs v1alpha1.HostsStatus, problem string) error {
	slices.Sort(hs.NotReady)
	cond := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "AllHostsReady",
		Message: fmt.Sprintf("%d/%d hosts ready", hs.Ready, hs.Total)}
	phase := "Ready"
	switch {
	case problem != "":
		cond.Status, cond.Reason, cond.Message, phase = metav1.ConditionFalse, "InvalidSpec", problem, "Invalid"
	case hs.Ready < hs.Total || hs.Total == 0:
		cond.Status, cond.Reason, phase = metav1.ConditionFalse, "HostsNotReady", "Progressing"
	}
	old := readyOf(t)
	oldHosts, _, _ := unstructured.NestedFieldNoCopy(t.Object, "status", "hosts")
	oldJSON, _ := json.Marshal(oldHosts)
	newJSON, _ := json.Marshal(hs)
	if old != nil && old.Status == cond.Status && old.Message == cond.Message && string(oldJSON) == string(newJSON) {
		return nil
	}
	cond.LastTransitionTime = metav1.Now()
	if old != nil && old.Status == cond.Status {
		cond.LastTransitionTime = old.LastTransitionTime
	}
	return replaceStatus(ctx, res, t.GetName(), v1alpha1.CommonStatus{Phase: phase, Conditions: []v1alpha1.Condition{cond}, Hosts: &hs})
}
