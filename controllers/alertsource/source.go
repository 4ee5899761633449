// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package alertsource turns the statuses of every kind into alerts: an
// alert fires when a resource turns unhealthy and resolves when it
// recovers or is deleted.
package alertsource

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// Sink receives the current state of every alert.
type Sink interface {
	// Set records an alert: firing when EndsAt is zero, resolved otherwise.
	Set(a receivers.Alert)
	// Alerts returns the alerts currently firing (also those from before a
	// daemon restart).
	Alerts() []receivers.Alert
}

// Source derives alerts from the resources' state, level-based: it
// watches every object and turns "unhealthy" into a firing alert and
// "healthy again" into its resolution. Alert names are <Kind><Reason>:
// LinkDown, ProcessBackOff, ProcessFailed, ModuleFailed,
// PiNodeInstallFailed, and <Kind>InvalidSpec for invalid resources.
type Source struct {
	store *resources.Store
	sink  Sink
	log   logr.Logger
	// firing holds, per object key, the alerts firing for it.
	firing map[resources.Key]map[string]receivers.Alert
}

// NewSource returns a source feeding sink from store.
func NewSource(store *resources.Store, sink Sink, log logr.Logger) *Source {
	return &Source{store: store, sink: sink, log: log, firing: map[resources.Key]map[string]receivers.Alert{}}
}

// SetupWithEngine registers the source with the engine as the "alerts"
// controller, keyed by kind and name: every change of any resource (status
// included) enqueues its key, and a burst of status updates costs one
// evaluation per resource. It first takes the alerts already firing
// (persisted by the sink) as its starting point, so a resource that
// recovered while the daemon was down resolves its alert, and evaluates
// every resource once. Call it after the store is loaded and before the
// engine starts.
func (a *Source) SetupWithEngine(e *reconcile.Engine) error {
	c, err := reconcile.Register(e, "alerts", reconcile.TypedReconciler[resources.Key](a),
		reconcile.TypedControllerOptions[resources.Key]{MaxConcurrentReconciles: 1}) // firing is not shared between workers
	if err != nil {
		return err
	}
	for _, al := range a.sink.Alerts() {
		k := resources.Key{Kind: al.Kind, Name: al.Object}
		if a.firing[k] == nil {
			a.firing[k] = map[string]receivers.Alert{}
		}
		a.firing[k][al.Name] = al
	}
	// Subscribed before the first pass: no change falls between.
	a.store.Subscribe("", false, func(ch *resources.Change) { c.Add(ch.Key) })
	seen := map[resources.Key]bool{}
	for _, ki := range v1alpha1.Kinds {
		for _, obj := range a.store.List(ki.Kind) {
			k := resources.Key{Kind: ki.Kind, Name: obj.GetObjectMeta().Name}
			seen[k] = true
			a.evaluate(k, obj)
		}
	}
	for k := range a.firing {
		// Deleted while we were not watching, unless it may only be in a
		// file that does not parse right now.
		if !seen[k] && a.store.Settled() && !a.store.Known(k.Kind, k.Name) {
			a.resolveAll(k)
		}
	}
	return nil
}

// Reconcile evaluates the alerts of one resource against its current state.
func (a *Source) Reconcile(_ context.Context, k resources.Key) (reconcile.Result, error) {
	obj, _ := a.store.View(k.Kind, k.Name) // nil: deleted
	a.evaluate(k, obj)
	return reconcile.Result{}, nil
}

// evaluate compares the alerts an object calls for with those firing; a
// nil obj means the resource is gone.
func (a *Source) evaluate(k resources.Key, obj v1alpha1.Object) {
	if obj != nil && stateUnknown(obj) {
		return // not observed yet since start (or --status none): keep what fires
	}
	want := map[string]receivers.Alert{}
	if obj != nil {
		for _, al := range alertsFor(obj) {
			want[al.Name] = al
		}
	}
	cur := a.firing[k]
	for name, al := range cur {
		if _, still := want[name]; !still {
			if obj == nil {
				al = resolvedByDeletion(al)
			} else {
				al.EndsAt = time.Now()
			}
			a.sink.Set(al)
			delete(cur, name)
		}
	}
	for name, al := range want {
		if prev, ok := cur[name]; ok {
			al.StartsAt = prev.StartsAt // same episode
			if al.Message == prev.Message {
				continue
			}
		}
		if cur == nil {
			cur = map[string]receivers.Alert{}
			a.firing[k] = cur
		}
		cur[name] = al
		a.sink.Set(al)
	}
	if len(cur) == 0 {
		delete(a.firing, k)
	}
}

// resolveAll resolves every alert firing for k, whose resource is gone.
func (a *Source) resolveAll(k resources.Key) {
	for _, al := range a.firing[k] {
		a.sink.Set(resolvedByDeletion(al))
	}
	delete(a.firing, k)
}

// resolvedByDeletion resolves an alert because its resource was deleted:
// the notification says so ("[RESOLVED] Link dead was deleted") instead of
// claiming a recovery nobody saw.
func resolvedByDeletion(al receivers.Alert) receivers.Alert {
	al.EndsAt = time.Now()
	al.Deleted = true
	al.ResolvedSummary = fmt.Sprintf("%s %s was deleted", al.Kind, al.Object)
	al.Message = "the resource was deleted while the alert was firing; the problem was not seen to end"
	return al
}

// stateUnknown reports whether an object's health is not known yet: no
// phase, or a Link still probing.
func stateUnknown(obj v1alpha1.Object) bool {
	phase := obj.GetCommonStatus().Phase
	return phase == "" || (obj.GetTypeMeta().Kind == v1alpha1.KindLink && phase == v1alpha1.LinkUnknown)
}

// alertsFor returns the alerts an object's current state calls for.
func alertsFor(obj v1alpha1.Object) []receivers.Alert {
	kind, name := obj.GetTypeMeta().Kind, obj.GetObjectMeta().Name
	cs := obj.GetCommonStatus()
	ready := cs.Condition(v1alpha1.ConditionReady)
	msg := ""
	if ready != nil {
		msg = ready.Message
	}
	var out []receivers.Alert
	add := func(reason, severity, summary, resolved, message string) {
		out = append(out, newAlert(obj, kind+reason, severity, summary, resolved, message))
	}
	if ready != nil && ready.Reason == v1alpha1.ReasonInvalidSpec {
		add(v1alpha1.ReasonInvalidSpec, v1alpha1.SeverityWarning, fmt.Sprintf("%s %s is invalid", kind, name), fmt.Sprintf("%s %s is valid again", kind, name), msg)
	}
	switch o := obj.(type) {
	case *v1alpha1.Link:
		if o.Status.Phase == v1alpha1.LinkDown {
			add("Down", v1alpha1.SeverityCritical, fmt.Sprintf("Link %s is Down", name), fmt.Sprintf("Link %s is Up", name), o.Status.LastError)
		}
	case *v1alpha1.Process:
		if c := cs.Condition(v1alpha1.ProcessConditionDuplicate); c != nil && c.Status == metav1.ConditionTrue {
			add("Duplicate", v1alpha1.SeverityWarning, fmt.Sprintf("Process %s runs more than once", name), fmt.Sprintf("Process %s runs once again", name), c.Message)
		}
		switch o.Status.Phase {
		case v1alpha1.ProcessBackOff:
			add("BackOff", v1alpha1.SeverityWarning, fmt.Sprintf("Process %s is crash-looping", name), fmt.Sprintf("Process %s is running again", name), msg)
		case v1alpha1.ProcessFailed:
			add("Failed", v1alpha1.SeverityCritical, fmt.Sprintf("Process %s failed", name), fmt.Sprintf("Process %s is running again", name), msg)
		}
	case *v1alpha1.Check:
		if al, ok := checkAlert(o, msg); ok {
			out = append(out, al)
		}
	case *v1alpha1.Module:
		if o.Status.Phase == v1alpha1.ModuleFailed {
			add("Failed", v1alpha1.SeverityCritical, fmt.Sprintf("Module %s failed", name), fmt.Sprintf("Module %s is active again", name), msg)
		}
	case *v1alpha1.PiNode:
		if o.Status.Phase == v1alpha1.PiNodeFailed {
			add("InstallFailed", v1alpha1.SeverityCritical, fmt.Sprintf("PiNode %s install failed", name), fmt.Sprintf("PiNode %s is installed", name), msg)
		}
		if lc := o.Status.LastPowerCycle; lc != nil && lc.Result == v1alpha1.PowerCycleFailed {
			add("PowerCycleFailed", v1alpha1.SeverityWarning, fmt.Sprintf("PiNode %s was not power-cycled", name), fmt.Sprintf("PiNode %s was power-cycled", name), lc.Message)
		}
	}
	return out
}

// checkAlert is the alert of a Check whose level is not the best: one
// alert per Check (CheckLevel) whose labels carry the level and the level
// before it, so that routes select on both and every level change is a
// new notification of the same alert. Its severity follows the level's
// place among the Check's levels: the worse half critical or warning.
func checkAlert(c *v1alpha1.Check, why string) (receivers.Alert, bool) {
	level, rank, n := c.Status.Level, c.Spec.Rank(c.Status.Level), len(c.Spec.Names())
	if level == "" || rank == 0 {
		return receivers.Alert{}, false
	}
	severity := v1alpha1.SeverityWarning // Unknown: no value is not fine
	if rank > 0 {
		switch f := float64(rank) / float64(n-1); {
		case f >= 0.75:
			severity = v1alpha1.SeverityCritical
		case f >= 0.5:
			severity = v1alpha1.SeverityWarning
		default:
			severity = v1alpha1.SeverityInfo
		}
	}
	name, item := c.Name, c.Labels["item"]
	if item == "" {
		item = name
	}
	prev := c.Status.PreviousLevel
	summary := fmt.Sprintf("Check %s is %s", item, level)
	if prev != "" {
		summary += " (was " + prev + ")"
	}
	if prev != "" {
		why = prev + " -> " + why
	}
	al := newAlert(c, "CheckLevel", severity, summary, fmt.Sprintf("Check %s is %s again", item, c.Spec.Names()[0]), why)
	al.Labels[receivers.LabelLevel] = level
	if prev != "" {
		al.Labels[receivers.LabelPreviousLevel] = prev
	}
	return al, true
}

func newAlert(obj v1alpha1.Object, alertName, severity, summary, resolved, message string) receivers.Alert {
	kind, name := obj.GetTypeMeta().Kind, obj.GetObjectMeta().Name
	labels := map[string]string{}
	for k, v := range obj.GetObjectMeta().Labels {
		labels[k] = v
	}
	labels["alertname"], labels["kind"], labels["name"], labels["severity"] = alertName, kind, name, severity
	return receivers.Alert{Name: alertName, Kind: kind, Object: name, Severity: severity, Labels: labels,
		Summary: summary, ResolvedSummary: resolved, Message: message, StartsAt: time.Now(), Fingerprint: receivers.Fingerprint(alertName, kind, name)}
}
