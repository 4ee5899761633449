// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"net"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Fleet names.
const (
	// LabelHostname is the label every host has: its name.
	LabelHostname = "reconciled.dev/hostname"
	// AnnotationHosts limits a resource to the hosts whose labels match
	// its label selector.
	AnnotationHosts = "reconciled.dev/hosts"
	// AnnotationHost names the host an object was read from, in lists
	// across the fleet (reconcilectl get KIND --all-hosts).
	AnnotationHost = "reconciled.dev/host"
	// LabelHost selects the objects of a Kubernetes API server that one
	// host's agent (reconciled --kube --host NAME) applies.
	LabelHost = "reconciled.dev/host"
	// LabelTemplate marks the hub's per-host copies of a template (an
	// object with reconciled.dev/hosts) with the template's UID.
	LabelTemplate = "reconciled.dev/template"
)

// Host is one machine of the fleet, as the fleet's repository declares
// it: metadata.name is its name (--host), metadata.labels its labels (which
// reconciled.dev/hosts selectors match), spec.address where its API is.
// It has no controller: hosts read their own labels from it, and the
// central view lists them.
type Host struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       HostSpec   `json:"spec"`
	Status     HostStatus `json:"status,omitempty"`
}

// HostSpec says where the host's API is.
type HostSpec struct {
	// Address is host:port of the host's API (its --listen).
	Address string `json:"address,omitempty"`
}

// HostStatus is what a host's agent reports of itself in Kubernetes
// mode (reconciled --kube): the Node object's role. Ready is True while
// the agent heartbeats; the hub sets it False (reason LeaseExpired) when
// the host's Lease expires.
type HostStatus struct {
	CommonStatus `json:",inline"`
	// Version is the agent's reconciled version.
	Version string `json:"version,omitempty"`
	// Namespace is where the agent reads its objects ("" for every
	// namespace); the hub puts a template's copies for this host there.
	Namespace string `json:"namespace,omitempty"`
	// Resources counts the resources the agent applies, by kind.
	Resources map[string]int `json:"resources,omitempty"`
	// LastHeartbeatTime is when the agent last reported this status.
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`
}

// Default does nothing: a Host has no defaults.
func (h *Host) Default() {}

// Validate checks a Host.
func (h *Host) Validate() field.ErrorList {
	errs := validateMeta(&h.TypeMeta, &h.ObjectMeta)
	if a := h.Spec.Address; a != "" {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "address"), a, "must be host:port of the host's API"))
		}
	}
	return errs
}

// GetTypeMeta implements Object.
func (h *Host) GetTypeMeta() *TypeMeta { return &h.TypeMeta }

// GetObjectMeta implements Object.
func (h *Host) GetObjectMeta() *ObjectMeta { return &h.ObjectMeta }

// GetCommonStatus implements Object.
func (h *Host) GetCommonStatus() *CommonStatus { return &h.Status.CommonStatus }

// GetSpec implements Object.
func (h *Host) GetSpec() any { return &h.Spec }

// GetStatus implements Object.
func (h *Host) GetStatus() any { return &h.Status }

// WithStatus implements Object.
func (h *Host) WithStatus(status any) Object {
	c := *h
	c.Status = status.(HostStatus)
	return &c
}
