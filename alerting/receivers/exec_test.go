// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func execSpec(argv ...string) v1alpha1.Receiver {
	return v1alpha1.Receiver{Exec: &v1alpha1.ExecCheck{Command: argv}}
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "alert.json")
	r := newReceiver(t, execSpec("sh", "-c", `printf %s "$RECONCILED_ALERT_STATUS $RECONCILED_ALERT_ROUTE $RECONCILED_NOTIFICATION_ID $RECONCILED_ALERT_TEST" > "$0.env"; cat > "$0"`, out), 4, Options{})
	if r.Name() != "exec[4]" {
		t.Errorf("Name() = %q", r.Name())
	}
	for _, n := range []Notification{
		notification("n-7", linkAlert("a2rtr", false)),
		notification("n-8", linkAlert("a2rtr", true)),
	} {
		if err := r.Send(context.Background(), n); err != nil {
			t.Fatalf("Send: %v", err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var p WebhookPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("stdin is not JSON: %v\n%s", err, b)
		}
		want := WebhookPayload{Version: "1", ID: n.ID, Route: "ops", GroupKey: n.GroupKey, Status: n.Status,
			Host: "hecnet-gw", CreatedAt: n.CreatedAt, Alerts: n.Alerts}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("stdin (-want +got):\n%s", diff)
		}
		env, err := os.ReadFile(out + ".env")
		if err != nil {
			t.Fatal(err)
		}
		if want := n.Status + " ops " + n.ID + " false"; string(env) != want {
			t.Errorf("environment %q, want %q", env, want)
		}
	}
}

func TestExecErrors(t *testing.T) {
	n := notification("n-1", linkAlert("a2rtr", false))
	for _, tc := range []struct {
		name    string
		argv    []string
		timeout time.Duration
		want    []string
		is      error
		check   func(t *testing.T, err error)
	}{{
		name: "exit status and stderr",
		argv: []string{"sh", "-c", "cat >/dev/null; echo 'pager service unreachable' >&2; exit 3"},
		want: []string{"exit status 3", "pager service unreachable", "exec sh"},
	}, {
		name: "stderr truncated",
		argv: []string{"sh", "-c", `i=0; while [ $i -lt 100 ]; do printf yyyyyyyyyy >&2; i=$((i+1)); done; exit 1`},
		want: []string{"exit status 1", strings.Repeat("y", 200) + "..."},
		check: func(t *testing.T, err error) {
			if c := strings.Count(err.Error(), "y"); c > 200 {
				t.Errorf("error quotes %d bytes of stderr, want at most 200", c)
			}
		},
	}, {
		name: "not found",
		argv: []string{filepath.Join(t.TempDir(), "no-such-command")},
		want: []string{"no-such-command"},
	}, {
		name:    "timeout kills the process group",
		argv:    []string{"sh", "-c", "sleep 60 & wait"},
		timeout: 200 * time.Millisecond,
		is:      context.DeadlineExceeded,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := newReceiver(t, execSpec(tc.argv...), 0, Options{Timeout: tc.timeout}).Send(context.Background(), n)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Send took %v", d)
			}
		})
	}
}
