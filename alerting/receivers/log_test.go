// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func TestLog(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
	)
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, prefix+" "+args)
	}, funcr.Options{})
	r := newReceiver(t, v1alpha1.Receiver{Log: &v1alpha1.LogReceiver{}}, 5, Options{Log: log})
	if r.Name() != "log[5]" {
		t.Errorf("Name() = %q", r.Name())
	}
	if err := r.Send(context.Background(), notification("n-9", linkAlert("a2rtr", false), linkAlert("b3rtr", true))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1: %q", len(lines), lines)
	}
	for _, s := range []string{`"route"="ops"`, `"status"="firing"`, `"id"="n-9"`, `"level"=0`,
		"LinkDown Link/a2rtr firing: Link a2rtr is Down", "LinkDown Link/b3rtr resolved: Link b3rtr is Up"} {
		if !strings.Contains(lines[0], s) {
			t.Errorf("log line %q lacks %q", lines[0], s)
		}
	}

	// The zero Logger is fine too.
	if err := newReceiver(t, v1alpha1.Receiver{Log: &v1alpha1.LogReceiver{}}, 0, Options{}).Send(context.Background(), notification("n")); err != nil {
		t.Errorf("Send: %v", err)
	}
}
