// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package alertroute is the AlertRoute controller: it validates routes,
// hands them to the alert manager (alerting) and reports their delivery
// state.
package alertroute

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/alerting"
	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// AlertRoute condition reasons.
const (
	ReasonDelivering     = "Delivering"
	ReasonDeliveryFailed = "DeliveryFailed"
	ReasonInvalidRoute   = "InvalidRoute"
	ReasonSecretMissing  = "SecretUnreadable"
)

// secretRecheck is how often a route whose secret file cannot be read
// looks again (nothing signals the file appearing).
const secretRecheck = time.Minute

// Routes is what the AlertRoute controller needs from the alert manager.
type Routes interface {
	SetRoute(name string, spec v1alpha1.AlertRouteSpec) error
	RemoveRoute(name string)
	Status(route string) (alerting.RouteStatus, bool)
}

// Reconciler keeps the alert manager's routes in line with the
// AlertRoute resources and publishes their delivery status.
type Reconciler struct {
	store  controllers.ResourceStore
	routes Routes
	log    logr.Logger
	ctrl   *reconcile.Controller

	mu      sync.Mutex
	applied map[string]string // route -> spec hash given to the manager
}

// NewReconciler returns the AlertRoute controller. routes may be
// nil and set with SetManager before SetupWithEngine (the manager's status
// callback and the controller refer to each other).
func NewReconciler(store controllers.ResourceStore, routes Routes, log logr.Logger) *Reconciler {
	return &Reconciler{store: store, routes: routes, log: log, applied: map[string]string{}}
}

// SetManager sets the alert manager the routes go to.
func (r *Reconciler) SetManager(routes Routes) { r.routes = routes }

// SetupWithEngine registers the controller and subscribes to store changes.
func (r *Reconciler) SetupWithEngine(e *reconcile.Engine) error {
	c, err := controllers.WatchKind(e, r.store, v1alpha1.KindAlertRoute, r, reconcile.ControllerOptions{MaxConcurrentReconciles: 1})
	r.ctrl = c
	return err
}

// SyncAll reconciles every AlertRoute now (before the engine runs), so the
// manager knows every route before it is asked to drop unknown ones.
func (r *Reconciler) SyncAll(ctx context.Context) {
	for _, n := range r.store.Names(v1alpha1.KindAlertRoute) {
		r.Reconcile(ctx, reconcile.Request{Name: n})
	}
}

// StatusChanged is the manager's OnRouteStatus callback.
func (r *Reconciler) StatusChanged(route string) {
	if r.ctrl != nil {
		r.ctrl.Enqueue(route)
	}
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj, ok := r.store.Get(v1alpha1.KindAlertRoute, req.Name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		if _, had := r.applied[req.Name]; had {
			r.routes.RemoveRoute(req.Name)
			delete(r.applied, req.Name)
		}
		return reconcile.Result{}, nil
	}
	ar := obj.(*v1alpha1.AlertRoute)
	st := v1alpha1.AlertRouteStatus{CommonStatus: controllers.StatusFor(ar)}
	// Keep only the conditions of receivers that still exist.
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c v1alpha1.Condition) bool {
		var i int
		n, _ := fmt.Sscanf(c.Type, "Receiver%d", &i)
		return n == 1 && i >= len(ar.Spec.Receivers)
	})
	hash := resources.SpecHash(ar)
	var setErr error
	if r.applied[req.Name] != hash {
		// The manager installs the route even when a receiver cannot be
		// built (that receiver then fails its deliveries); record it as
		// applied either way, or the status callback would loop.
		setErr = r.routes.SetRoute(req.Name, ar.Spec)
		r.applied[req.Name] = hash
		if setErr != nil {
			r.log.Info("alert route has a receiver that cannot be built", "route", req.Name, "error", setErr.Error())
		}
	}
	rs, _ := r.routes.Status(req.Name)
	st.Sent, st.Failed, st.Pending = rs.Sent, rs.Failed, rs.Pending
	st.Phase = v1alpha1.AlertRouteReady
	ready := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonDelivering, ObservedGeneration: ar.Generation}
	if setErr != nil {
		st.Phase = v1alpha1.AlertRouteDegraded
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonInvalidRoute, setErr.Error()
	}
	for i, rcv := range rs.Receivers {
		c := v1alpha1.Condition{Type: fmt.Sprintf("Receiver%d", i), Status: metav1.ConditionTrue, Reason: ReasonDelivering,
			Message: rcv.Name, ObservedGeneration: ar.Generation}
		if !rcv.Healthy {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonDeliveryFailed, rcv.Name+": "+rcv.LastError
			st.Phase = v1alpha1.AlertRouteDegraded
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonDeliveryFailed, c.Message
		}
		st.SetCondition(c)
	}
	// A secret file that cannot be read fails every delivery: say so now,
	// not at the first alert.
	var res reconcile.Result
	for i, spec := range ar.Spec.Receivers {
		if err := receivers.CheckSecrets(spec); err != nil {
			name := fmt.Sprintf("receiver %d", i)
			if i < len(rs.Receivers) {
				name = rs.Receivers[i].Name
			}
			c := v1alpha1.Condition{Type: fmt.Sprintf("Receiver%d", i), Status: metav1.ConditionFalse, Reason: ReasonSecretMissing,
				Message: name + ": " + err.Error(), ObservedGeneration: ar.Generation}
			st.SetCondition(c)
			st.Phase = v1alpha1.AlertRouteDegraded
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonSecretMissing, c.Message
			res.RequeueAfter = secretRecheck
		}
	}
	st.SetCondition(ready)
	if err := r.store.UpdateStatus(v1alpha1.KindAlertRoute, req.Name, st); err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("status not updated", "error", err.Error())
	}
	return res, nil
}
