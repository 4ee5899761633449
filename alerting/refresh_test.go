// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"testing"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// While a group fires, its alerts are re-sent to Alertmanager receivers
// (which forget alerts not refreshed within resolve_timeout), but the other
// receivers only hear about it again at repeatInterval.
func TestAlertmanagerRefreshedWhileFiring(t *testing.T) {
	fs := newFakes()
	o := testOptions(fs, "")
	o.AlertmanagerRefresh = 60 * time.Millisecond
	m, stop := start(t, o)
	defer stop()
	spec := routeSpec(20*time.Millisecond, time.Hour, true, "fake://mail")
	spec.Receivers = append(spec.Receivers, v1alpha1.Receiver{Alertmanager: &v1alpha1.AlertmanagerReceiver{URL: "fake://am"}})
	if err := m.SetRoute("r", spec); err != nil {
		t.Fatal(err)
	}
	m.Set(newAlert("Link", "a2rtr", "LinkDown"))
	eventually(t, "Alertmanager refreshed", func() bool { return fs.get("fake://am").count() >= 3 })
	if n := fs.get("fake://mail").count(); n != 1 {
		t.Fatalf("the mail receiver got %d notifications, want 1 (repeatInterval is 1h)", n)
	}
	for _, n := range fs.get("fake://am").notifications() {
		if n.Status != "firing" || len(n.Alerts) != 1 || n.Alerts[0].Name != "LinkDown" {
			t.Fatalf("refresh notification %+v", n)
		}
	}
}
