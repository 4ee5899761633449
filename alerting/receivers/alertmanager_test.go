// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func TestAlertmanager(t *testing.T) {
	srv, reqs := hookServer(t, http.StatusOK, "")
	r := newReceiver(t, v1alpha1.Receiver{Alertmanager: &v1alpha1.AlertmanagerReceiver{URL: srv.URL + "/am/"}}, 0, Options{})
	n := notification("n-1", linkAlert("a2rtr", false), linkAlert("b3rtr", true))
	if err := r.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	req := <-reqs
	if req.method != http.MethodPost || req.path != "/am/api/v2/alerts" || req.header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s (%s), want POST /am/api/v2/alerts (application/json)", req.method, req.path, req.header.Get("Content-Type"))
	}
	var got []map[string]any
	if err := json.Unmarshal(req.body, &got); err != nil {
		t.Fatalf("body: %v\n%s", err, req.body)
	}
	labels := func(name string) map[string]any {
		return map[string]any{"alertname": "LinkDown", "kind": "Link", "name": name, "severity": "critical",
			"site": "hecnet", "app_kubernetes_io_part_of": "decnet", "host": "hecnet-gw"}
	}
	want := []map[string]any{{
		"labels":       labels("a2rtr"),
		"annotations":  map[string]any{"summary": "Link a2rtr is Down", "description": "dial tcp 127.0.0.1:4242: connect: connection refused"},
		"startsAt":     "2026-03-04T05:06:07Z",
		"generatorURL": "",
	}, {
		"labels":       labels("b3rtr"),
		"annotations":  map[string]any{"summary": "Link b3rtr is Up", "description": "dial tcp 127.0.0.1:4242: connect: connection refused"},
		"startsAt":     "2026-03-04T05:06:07Z",
		"endsAt":       "2026-03-04T05:18:07Z",
		"generatorURL": "",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}

	// Test notifications are labelled as such.
	n.Test = true
	if err := r.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := json.Unmarshal((<-reqs).body, &got); err != nil || got[0]["labels"].(map[string]any)["test"] != "true" {
		t.Errorf("test alert labels %v (%v), want test=true", got, err)
	}
}

func TestAlertmanagerRejects(t *testing.T) {
	srv, _ := hookServer(t, http.StatusBadRequest, `{"code":400,"message":"invalid label set"}`)
	r := newReceiver(t, v1alpha1.Receiver{Alertmanager: &v1alpha1.AlertmanagerReceiver{URL: srv.URL}}, 0, Options{})
	err := r.Send(context.Background(), notification("n-1", linkAlert("a2rtr", false)))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "invalid label set") {
		t.Errorf("Send = %v, want the 400 and its message", err)
	}
}

func TestLabelName(t *testing.T) {
	for in, want := range map[string]string{"site": "site", "app.kubernetes.io/name": "app_kubernetes_io_name", "1x": "_x", "a1": "a1", "ü": "__", "": ""} {
		if got := labelName(in); got != want {
			t.Errorf("labelName(%q) = %q, want %q", in, got, want)
		}
	}
}
