// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/link/probe"
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
