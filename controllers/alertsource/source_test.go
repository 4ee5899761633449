// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alertsource

import (
	"testing"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

type recordingSink struct{ got []receivers.Alert }

func (s *recordingSink) Set(a receivers.Alert)     { s.got = append(s.got, a) }
func (s *recordingSink) Alerts() []receivers.Alert { return nil }

func link(name, phase string) *v1alpha1.Link {
	l := &v1alpha1.Link{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindLink}, ObjectMeta: v1alpha1.ObjectMeta{Name: name}}
	l.Status.Phase = phase
	l.Status.LastError = "ConnectionRefused"
	return l
}

func key(name string) resources.Key { return resources.Key{Kind: v1alpha1.KindLink, Name: name} }

func TestAlertSourceLifecycle(t *testing.T) {
	sink := &recordingSink{}
	a := NewSource(nil, sink, logr.Discard())
	a.evaluate(key("a2rtr"), link("a2rtr", v1alpha1.LinkDown))
	if len(sink.got) != 1 || sink.got[0].Name != "LinkDown" || !sink.got[0].Firing() || sink.got[0].Severity != v1alpha1.SeverityCritical {
		t.Fatalf("down: %+v", sink.got)
	}
	// Still down: nothing new.
	a.evaluate(key("a2rtr"), link("a2rtr", v1alpha1.LinkDown))
	// Not observed yet (a restart, or --status none): the alert stays.
	a.evaluate(key("a2rtr"), link("a2rtr", ""))
	a.evaluate(key("a2rtr"), link("a2rtr", v1alpha1.LinkUnknown))
	if len(sink.got) != 1 {
		t.Fatalf("an unknown phase changed the alert: %+v", sink.got)
	}
	a.evaluate(key("a2rtr"), link("a2rtr", v1alpha1.LinkUp))
	if len(sink.got) != 2 || sink.got[1].Firing() {
		t.Fatalf("up: %+v", sink.got)
	}
	// Deleted while down: resolved.
	a.evaluate(key("b"), link("b", v1alpha1.LinkDown))
	a.evaluate(key("b"), nil)
	if n := len(sink.got); n != 4 || sink.got[3].Firing() || sink.got[3].Object != "b" {
		t.Fatalf("delete: %+v", sink.got)
	}
	// Deletion is not recovery: the notification must not say "is Up".
	if got := sink.got[3]; !got.Deleted || got.ResolvedSummary != "Link b was deleted" {
		t.Errorf("resolved by deletion: deleted=%v, summary %q", got.Deleted, got.ResolvedSummary)
	}
	if len(a.firing) != 0 {
		t.Fatalf("firing left: %v", a.firing)
	}
}
