// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// A webhook receiver that is down while a link goes down and up twice,
// then comes back: every notification arrives, in order, and none twice
// except with the same idempotency key (at-least-once).
func TestReceiverDownThenBack(t *testing.T) {
	hook := freePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := l.Addr().String()
	go acceptAll(l)
	e := newEnv(t)
	e.start()
	e.write("route.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: hook}
spec:
  match: {kinds: [Link]}
  groupWait: 100ms
  receivers:
  - webhook: {url: "http://127.0.0.1:%d/alerts"}
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: flappy}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
`, hook, target))
	e.waitLink("flappy", "Up")
	// Down, Up, Down, Up while the receiver is away; each change waits
	// until its notification is in the outbox.
	for i, phase := range []string{"Down", "Up", "Down", "Up"} {
		if phase == "Down" {
			l.Close()
		} else {
			if l, err = net.Listen("tcp", target); err != nil {
				t.Fatal(err)
			}
			go acceptAll(l)
		}
		e.waitLink("flappy", phase)
		e.eventually(fmt.Sprintf("%d notifications waiting", i+1), func() bool { return e.getRoute("hook").Status.Pending >= int64(i+1) })
	}
	defer l.Close()

	// The receiver comes back.
	var mu sync.Mutex
	var got []string
	keys := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n struct{ Status string }
		json.Unmarshal(b, &n)
		mu.Lock()
		got = append(got, n.Status)
		keys[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	})}
	hl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hook))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(hl)
	defer srv.Close()
	e.eventually("every notification delivered", func() bool { return e.getRoute("hook").Status.Pending == 0 })
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "firing,resolved,firing,resolved" {
		t.Fatalf("delivered %v, want firing,resolved,firing,resolved", got)
	}
	for k, n := range keys {
		if k == "" || n != 1 {
			t.Fatalf("idempotency keys %v: each notification once, with a key", keys)
		}
	}
	t.Logf("receiver down for 4 notifications, then back: %d delivered in order, %d distinct keys", len(got), len(keys))
}
