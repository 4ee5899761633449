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

// A Check not at its best level fires CheckLevel with its level and the
// one before as labels; a new level is a new message of the same alert;
// the best level resolves it.
func TestCheckAlert(t *testing.T) {
	sink := &recordingSink{}
	a := NewSource(nil, sink, logr.Discard())
	chk := func(level, prev, msg string) *v1alpha1.Check {
		c := &v1alpha1.Check{TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindCheck},
			ObjectMeta: v1alpha1.ObjectMeta{Name: "root-usage", Labels: map[string]string{"item": "root_usage"}}}
		c.Default()
		c.Status.Level, c.Status.PreviousLevel, c.Status.Phase = level, prev, level
		c.Status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: "True", Reason: "Evaluated", Message: msg})
		return c
	}
	k := resources.Key{Kind: v1alpha1.KindCheck, Name: "root-usage"}
	a.evaluate(k, chk("fine", "", "fine: 50 matches no rule"))
	if len(sink.got) != 0 {
		t.Fatalf("fine fired: %+v", sink.got)
	}
	a.evaluate(k, chk("sick", "fine", "sick: 91.3 above 90"))
	a.evaluate(k, chk("dead", "sick", "dead: 99 above 98"))
	if len(sink.got) != 2 {
		t.Fatalf("alerts %+v", sink.got)
	}
	sick, dead := sink.got[0], sink.got[1]
	if sick.Severity != v1alpha1.SeverityWarning || sick.Labels["level"] != "sick" || sick.Labels["previousLevel"] != "fine" ||
		sick.Message != "fine -> sick: 91.3 above 90" || sick.Summary != "Check root_usage is sick (was fine)" {
		t.Fatalf("sick: %+v", sick)
	}
	if dead.Severity != v1alpha1.SeverityCritical || dead.Fingerprint != sick.Fingerprint || dead.Labels["previousLevel"] != "sick" {
		t.Fatalf("dead: %+v", dead)
	}
	a.evaluate(k, chk("fine", "dead", "fine: 40 matches no rule"))
	if len(sink.got) != 3 || sink.got[2].Firing() || sink.got[2].ResolvedSummary != "Check root_usage is fine again" {
		t.Fatalf("resolved: %+v", sink.got)
	}
}
