// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package kubeagent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// LeaseNamespace holds the hosts' Leases and the hub's election Lease, as
// kube-node-lease holds the nodes'.
const LeaseNamespace = "reconciled-system"

// LabelTemplates, set to "true" on a namespace (by the cluster's
// administrator), lets the hub read templates there.
const LabelTemplates = "reconciled.dev/templates"

// leaseDuration is how long a host's Lease lasts without renewal (the
// kubelet's default): four missed heartbeats.
const leaseDuration = 40 * time.Second

// hostStatusEvery is how often the Host object's status is written when
// nothing in it changed (the Lease is the heartbeat).
const hostStatusEvery = time.Minute

// Heartbeat renews the host's Lease every 10 s and keeps its Host object's
// status (Ready, version, namespace, resource counts, last heartbeat).
type Heartbeat struct {
	Client    kubernetes.Interface
	Dyn       dynamic.Interface
	Store     *resources.Store
	Host      string
	Namespace string // the agent's --kube-namespace
	Address   string // the API address for spec.address of a new Host
	Version   string
	Log       logr.Logger

	lease *coordinationv1.Lease // as the last renewal left it
}

// Run beats until ctx is done; failures are logged and retried at the
// next beat.
func (h *Heartbeat) Run(ctx context.Context) error {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	var lastStatus string
	var lastWrite time.Time
	for {
		if err := h.renewLease(ctx); err != nil {
			h.Log.V(1).Info("cannot renew the Lease", "error", err.Error())
			lastStatus = "" // write the Host when the API server is back
		}
		counts := h.counts()
		key, _ := json.Marshal(counts)
		if string(key) != lastStatus || time.Since(lastWrite) >= hostStatusEvery {
			if err := h.writeHost(ctx, counts); err != nil {
				h.Log.V(1).Info("cannot write the Host status", "error", err.Error())
			} else {
				lastStatus, lastWrite = string(key), time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// counts are the resources the host applies, by kind (the store's own
// counts, which /metrics reports too).
func (h *Heartbeat) counts() map[string]int {
	byKindPhase, _ := h.Store.Counts()
	out := map[string]int{}
	for k, n := range byKindPhase {
		if k.Kind != v1alpha1.KindHost {
			out[k.Kind] += n
		}
	}
	return out
}

// renewLease creates or renews the host's Lease: one update per beat,
// from the Lease the last one returned (read again only after an error,
// as the kubelet does).
func (h *Heartbeat) renewLease(ctx context.Context) error {
	leases := h.Client.CoordinationV1().Leases(LeaseNamespace)
	now := metav1.NowMicro()
	l := h.lease
	h.lease = nil
	if l == nil {
		var err error
		l, err = leases.Get(ctx, h.Host, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			created, err := leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: h.Host, Namespace: LeaseNamespace, Labels: map[string]string{v1alpha1.LabelHost: h.Host}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(h.Host), LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
					AcquireTime: &now, RenewTime: &now},
			}, metav1.CreateOptions{})
			if err == nil {
				h.lease = created
			}
			return err
		}
		if err != nil {
			return err
		}
	}
	l.Spec.HolderIdentity = ptr.To(h.Host)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration / time.Second))
	l.Spec.RenewTime = &now
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err == nil {
		h.lease = updated
	}
	return err
}

// writeHost creates the Host object when missing and writes its status.
func (h *Heartbeat) writeHost(ctx context.Context, counts map[string]int) error {
	hosts := h.Dyn.Resource(hostsGVR)
	cur, err := hosts.Get(ctx, h.Host, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": v1alpha1.KindHost,
			"metadata": map[string]any{"name": h.Host}, "spec": map[string]any{}}}
		if h.Address != "" {
			obj.Object["spec"] = map[string]any{"address": h.Address}
		}
		cur, err = hosts.Create(ctx, obj, metav1.CreateOptions{FieldManager: "reconciled"})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	ready := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "AgentReady",
		Message: "the agent heartbeats every 10s", LastTransitionTime: now}
	if was := readyOf(cur); was != nil && was.Status == metav1.ConditionTrue {
		ready.LastTransitionTime = was.LastTransitionTime
	}
	status := v1alpha1.HostStatus{CommonStatus: v1alpha1.CommonStatus{Phase: "Ready", Conditions: []v1alpha1.Condition{ready}},
		Version: h.Version, Namespace: h.Namespace, Resources: counts, LastHeartbeatTime: &now}
	return replaceStatus(ctx, hosts, h.Host, status)
}

// readyOf returns an object's Ready condition, or nil.
func readyOf(u *unstructured.Unstructured) *v1alpha1.Condition {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		b, _ := json.Marshal(c)
		var cond v1alpha1.Condition
		if json.Unmarshal(b, &cond) == nil && cond.Type == v1alpha1.ConditionReady {
			return &cond
		}
	}
	return nil
}
