// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package link

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/probe"
)

func TestLinkHysteresis(t *testing.T) {
	ok := probe.Result{OK: true, Latency: time.Millisecond}
	slow := probe.Result{OK: true, Latency: 100 * time.Millisecond}
	bad := probe.Result{Reason: probe.ReasonRefused, Message: "connection refused"}
	tests := map[string]struct {
		start   string
		results []probe.Result
		want    []string // phase after each result
	}{
		"unknown to up at once":        {v1alpha1.LinkUnknown, []probe.Result{ok}, []string{"Unknown", "Up"}[1:]},
		"down needs three failures":    {v1alpha1.LinkUp, []probe.Result{bad, bad, bad}, []string{"Up", "Up", "Down"}},
		"a success resets the count":   {v1alpha1.LinkUp, []probe.Result{bad, bad, ok, bad, bad}, []string{"Up", "Up", "Up", "Up", "Up"}},
		"up needs two successes":       {v1alpha1.LinkDown, []probe.Result{ok, bad, ok, ok}, []string{"Down", "Down", "Down", "Up"}},
		"slow is degraded":             {v1alpha1.LinkUp, []probe.Result{slow, slow}, []string{"Up", "Degraded"}},
		"flapping inside the treshold": {v1alpha1.LinkUp, []probe.Result{bad, ok, bad, ok, bad, ok}, []string{"Up", "Up", "Up", "Up", "Up", "Up"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := &v1alpha1.Link{Spec: v1alpha1.LinkSpec{FailureThreshold: 3, SuccessThreshold: 2, DegradedLatency: &metav1.Duration{Duration: 50 * time.Millisecond}}}
			if strings.HasPrefix(name, "unknown") {
				l.Spec.SuccessThreshold = 1
			}
			st := &linkState{phase: tc.start}
			var got []string
			for _, res := range tc.results {
				if to := st.next1(l, res); to != "" {
					st.phase = to
				}
				got = append(got, st.phase)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("phases %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLinkStatusMessages: a Link that recovers drops its lastError (the
// events keep it), and Degraded says how slow the probe was (issue 11).
func TestLinkStatusMessages(t *testing.T) {
	r := NewReconciler(Options{})
	l := &v1alpha1.Link{Spec: v1alpha1.LinkSpec{FailureThreshold: 1, SuccessThreshold: 1, DegradedLatency: &metav1.Duration{Duration: 250 * time.Millisecond}}}
	st := r.state("a", true)
	st.phase = v1alpha1.LinkUp
	r.observe("a", l, probe.Result{Reason: probe.ReasonRefused, Message: "connection refused"})
	if s := st.status(l); s.Phase != v1alpha1.LinkDown || !strings.Contains(s.LastError, "connection refused") {
		t.Fatalf("down: %+v", s)
	}
	r.observe("a", l, probe.Result{OK: true, Latency: 412 * time.Millisecond})
	s := st.status(l)
	if s.Phase != v1alpha1.LinkDegraded || s.LastError != "" {
		t.Fatalf("degraded: phase %s lastError %q", s.Phase, s.LastError)
	}
	if c := s.Condition(v1alpha1.ConditionReady); c.Message != "probe took 412ms, slower than degradedLatency 250ms" {
		t.Errorf("degraded message %q", c.Message)
	}
	r.observe("a", l, probe.Result{Reason: probe.ReasonRefused, Message: "connection refused"})
	r.observe("a", l, probe.Result{OK: true, Latency: time.Millisecond})
	if s := st.status(l); s.Phase != v1alpha1.LinkUp || s.LastError != "" {
		t.Errorf("up again: phase %s, lastError %q", s.Phase, s.LastError)
	}
}
