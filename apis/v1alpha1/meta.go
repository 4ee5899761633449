// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TypeMeta carries apiVersion and kind, as in every resource file.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata block of a resource.
type ObjectMeta struct {
	// Name is a DNS-1123 label; kind + name identify a resource.
	Name string `json:"name"`
	// Generation is kept by the daemon: it goes up by one each time the spec
	// changes in content.
	Generation int64 `json:"generation,omitempty"`
	// Labels are matched by selectors (reconcilectl get -l, AlertRoute match).
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations hold free-form data; see AnnotationRestartedAt.
	Annotations map[string]string `json:"annotations,omitempty"`
	// CreationTimestamp is when the daemon first saw the resource. It is
	// kept in the state dir, served by the API and never written to files;
	// a value in a file is ignored.
	CreationTimestamp *metav1.Time `json:"creationTimestamp,omitempty"`
	// ResourceVersion is the daemon's change counter at the resource's
	// last change, as the API serves it (watch from it; a stale write is a
	// Conflict). Never written to files; a value in a file is ignored.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// AnnotationRestartedAt restarts a Process or Module (power-cycles a
// PiNode) when its value changes, like kubectl rollout restart.
const AnnotationRestartedAt = "reconciled.dev/restartedAt"

// Condition is a status condition with exactly the fields of metav1.Condition.
type Condition = metav1.Condition

// Condition types and reasons shared by every kind.
const (
	// ConditionReady is the condition every kind has.
	ConditionReady = "Ready"
	// ReasonInvalidSpec marks a resource whose file or spec failed to decode
	// or validate; the last valid version keeps running.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDuplicateName marks a resource rejected because another file
	// already defines the same kind and name.
	ReasonDuplicateName = "DuplicateName"
)

// CommonStatus holds the status fields every kind shares.
type CommonStatus struct {
	// ObservedGeneration is the metadata.generation this status reflects.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is one summary word; each kind documents its values.
	Phase string `json:"phase,omitempty"`
	// Conditions holds one entry per type; every kind has Ready.
	Conditions []Condition `json:"conditions,omitempty"`
	// Hosts is set on a template (an object with reconciled.dev/hosts in
	// a Kubernetes API server) by the hub: its per-host copies.
	Hosts *HostsStatus `json:"hosts,omitempty"`
}

// HostsStatus counts a template's per-host copies.
type HostsStatus struct {
	// Total is how many hosts match the template's selector (one copy
	// each).
	Total int `json:"total"`
	// Ready is how many copies report Ready=True.
	Ready int `json:"ready"`
	// NotReady names the hosts whose copy is not Ready (at most 20).
	NotReady []string `json:"notReady,omitempty"`
}

// SetCondition adds or updates the condition of c.Type. LastTransitionTime
// changes only when Status changes (meta.SetStatusCondition semantics). It
// reports whether anything changed.
func (s *CommonStatus) SetCondition(c Condition) bool {
	return meta.SetStatusCondition(&s.Conditions, c)
}

// Condition returns the condition of the given type, or nil.
func (s *CommonStatus) Condition(condType string) *Condition {
	return meta.FindStatusCondition(s.Conditions, condType)
}

// Object is implemented by every kind.
type Object interface {
	// GetTypeMeta returns the object's apiVersion and kind.
	GetTypeMeta() *TypeMeta
	// GetObjectMeta returns the object's metadata.
	GetObjectMeta() *ObjectMeta
	// GetCommonStatus returns the status fields all kinds share.
	GetCommonStatus() *CommonStatus
	// GetSpec returns a pointer to the kind's Spec.
	GetSpec() any
	// GetStatus returns a pointer to the kind's Status.
	GetStatus() any
	// Default fills in the documented defaults in place.
	Default()
	// Validate checks a defaulted object; field paths start at the document
	// root ("spec.command").
	Validate() field.ErrorList
	// WithStatus returns a shallow copy of the object carrying status, which
	// must be a value of the kind's Status type. Spec and metadata are shared.
	WithStatus(status any) Object
}

// validateMeta checks apiVersion, kind and metadata.
func validateMeta(tm *TypeMeta, om *ObjectMeta) field.ErrorList {
	var errs field.ErrorList
	if tm.APIVersion != APIVersion {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), tm.APIVersion, "must be "+APIVersion))
	}
	p := field.NewPath("metadata")
	if om.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "every resource needs a name"))
	} else {
		for _, msg := range validation.IsDNS1123Label(om.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), om.Name, msg))
		}
	}
	if om.Generation < 0 {
		errs = append(errs, field.Invalid(p.Child("generation"), om.Generation, "must not be negative"))
	}
	errs = append(errs, metavalidation.ValidateLabels(om.Labels, p.Child("labels"))...)
	for k := range om.Annotations {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Child("annotations").Key(k), k, msg))
		}
	}
	if sel, ok := om.Annotations[AnnotationHosts]; ok {
		if _, err := labels.Parse(sel); err != nil {
			errs = append(errs, field.Invalid(p.Child("annotations").Key(AnnotationHosts), sel, "not a label selector: "+err.Error()))
		}
	}
	// At most 256 KiB of annotations in all, as in Kubernetes.
	if err := apivalidation.ValidateAnnotationsSize(om.Annotations); err != nil {
		errs = append(errs, field.TooLong(p.Child("annotations"), "", apivalidation.TotalAnnotationSizeLimitB))
	}
	return errs
}
