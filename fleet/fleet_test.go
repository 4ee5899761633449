// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package fleet

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func host(name, address string, labels map[string]string) *v1alpha1.Host {
	h := &v1alpha1.Host{Spec: v1alpha1.HostSpec{Address: address}}
	h.Name, h.Labels = name, labels
	return h
}

func TestTargetGroups(t *testing.T) {
	got := TargetGroups([]*v1alpha1.Host{
		host("web2", "10.0.0.2:9470", map[string]string{"role": "web", "example.com/site": "ams", "reconciled.dev/hostname": "x", "__bad": "y", "host": "z", "9lives": "n"}),
		host("web1", "10.0.0.1:9470", nil),
		host("nowhere", "", map[string]string{"role": "db"}),
	})
	want := []TargetGroup{
		{Targets: []string{"10.0.0.1:9470"}, Labels: map[string]string{"host": "web1"}},
		{Targets: []string{"10.0.0.2:9470"}, Labels: map[string]string{"host": "web2", "role": "web", "site": "ams", "hostname": "x"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("TargetGroups (-want +got):\n%s", d)
	}
	if b, _ := json.Marshal(TargetGroups(nil)); string(b) != "[]" {
		t.Errorf("no hosts: %s, want [] (Prometheus refuses null)", b)
	}
}

// The view asks every host at once, bounded; a host that does not answer
// in time is shown as such without holding up the others, and answers are
// cached for CacheTTL.
func TestView(t *testing.T) {
	var asked atomic.Int32
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.Header.Get("Authorization") != "Bearer fleet-secret" {
			http.Error(w, `{"message":"no token"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case SummaryPath:
			json.NewEncoder(w).Encode(Summary{Host: "web1", Unhealthy: []Resource{{Kind: "Process", Name: "web", Phase: "Failed"}}})
		case "/apis/reconciled.dev/v1alpha1/processes":
			if r.URL.Query().Get("labelSelector") != "app=web" {
				t.Errorf("selector %q not passed on", r.URL.RawQuery)
			}
			w.Write([]byte(`{"items":[{"metadata":{"name":"web"}}]}`))
		}
	}))
	defer good.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := l.Addr().String()
	l.Close()

	hosts := []*v1alpha1.Host{
		host("web1", strings.TrimPrefix(good.URL, "http://"), nil),
		host("slow", strings.TrimPrefix(slow.URL, "http://"), nil),
		host("gone", refused, nil),
		host("noaddr", "", nil),
		host("me", "", nil),
	}
	v := NewView(Options{Hosts: func() []*v1alpha1.Host { return hosts }, Self: "me", Local: func() *Summary { return &Summary{Host: "me"} },
		LocalList: func(plural, sel string) ([]json.RawMessage, error) {
			return []json.RawMessage{json.RawMessage(`{"metadata":{"name":"mine"}}`)}, nil
		},
		Token: "fleet-secret", Timeout: 300 * time.Millisecond, CacheTTL: time.Hour})
	start := time.Now()
	got := v.Hosts(context.Background())
	took := time.Since(start)
	byName := map[string]HostView{}
	for _, h := range got {
		byName[h.Name] = h
	}
	if s := byName["web1"].Summary; s == nil || len(s.Unhealthy) != 1 {
		t.Errorf("web1: %+v", byName["web1"])
	}
	if byName["me"].Summary == nil || byName["me"].Summary.Host != "me" {
		t.Errorf("self not from Local: %+v", byName["me"])
	}
	for name, want := range map[string]string{"slow": "", "gone": "unreachable", "noaddr": "no spec.address"} {
		if h := byName[name]; h.Summary != nil || !strings.Contains(h.Error, want) {
			t.Errorf("%s: summary %v, error %q (want %q)", name, h.Summary, h.Error, want)
		}
	}
	// Bounded by the timeout, not by the number of slow hosts (generous:
	// the timeout is 300 ms).
	if took > 10*time.Second {
		t.Errorf("the view waited %v for a host that does not answer", took)
	}
	n := asked.Load()
	v.Hosts(context.Background())
	if asked.Load() != n {
		t.Error("a cached answer was asked again")
	}
	items := v.List(context.Background(), "processes", "app=web")
	if len(items) != 5 || items[4].Host != "web1" || len(items[4].Items) != 1 || items[0].Host != "gone" || items[0].Error == "" || items[1].Host != "me" || len(items[1].Items) != 1 {
		t.Errorf("List: %+v", items)
	}

	// A wrong token is the host's answer, shown as the error.
	v2 := NewView(Options{Hosts: func() []*v1alpha1.Host { return hosts[:1] }, Token: "wrong"})
	if h := v2.Hosts(context.Background()); !strings.Contains(h[0].Error, "401") || !strings.Contains(h[0].Error, "no token") {
		t.Errorf("wrong token: %+v", h[0])
	}
}
