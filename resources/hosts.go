// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Per-host selection (Options.Host): a document with the annotation
// reconciled.dev/hosts applies only when its label selector matches this
// host's labels — those of the Host resource named Options.Host, plus
// reconciled.dev/hostname=<host> always. Host resources themselves always
// apply (every host knows the fleet). A document that does not apply is
// treated as absent from its file: a resource that stops applying is
// deleted after the same grace as one removed from its file.

// hostLabels are the labels of host: its Host resource's (nil: none) and
// reconciled.dev/hostname, which the resource cannot override.
func hostLabels(host string, obj v1alpha1.Object) labels.Set {
	set := labels.Set{}
	if obj != nil {
		for k, v := range obj.GetObjectMeta().Labels {
			set[k] = v
		}
	}
	set[v1alpha1.LabelHostname] = host
	return set
}

// selectsLocked reports whether a document applies on this host. A
// document that failed to decode is kept (it reports its errors), as is a
// selector that does not parse (validation reports it).
func (s *Store) selectsLocked(d *Document) bool {
	if s.opts.Host == "" || d.Object == nil || d.Kind == v1alpha1.KindHost {
		return true
	}
	sel, ok := d.Object.GetObjectMeta().Annotations[v1alpha1.AnnotationHosts]
	if !ok {
		return true
	}
	parsed, err := labels.Parse(sel)
	if err != nil {
		return true
	}
	return parsed.Matches(s.hostLabels)
}

// refreshHostLabelsLocked recomputes this host's labels from its Host
// resource and reports whether they changed.
func (s *Store) refreshHostLabelsLocked() bool {
	var obj v1alpha1.Object
	if e := s.entries[Key{v1alpha1.KindHost, s.opts.Host}]; e != nil {
		obj = e.obj
	}
	want := hostLabels(s.opts.Host, obj)
	if labels.Equals(want, s.hostLabels) {
		return false
	}
	s.log.Info("this host's labels changed; selecting resources again", "host", s.opts.Host, "labels", want.String())
	s.hostLabels = want
	return true
}

// reselectLocked reads every origin again, so each document is selected
// with this host's new labels.
func (s *Store) reselectLocked() {
	for p, f := range s.files {
		f.hash = [32]byte{} // force a real reload
		if s.reload != nil {
			s.reload(p)
		}
	}
}
