// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// AlertmanagerAlert is one element of the body of Alertmanager's
// POST /api/v2/alerts (its postableAlert).
type AlertmanagerAlert struct {
	// Labels identify the alert: alertname, kind, name, severity and the
	// resource's labels.
	Labels map[string]string `json:"labels"`
	// Annotations hold summary and description.
	Annotations map[string]string `json:"annotations"`
	// StartsAt is when the alert started firing.
	StartsAt time.Time `json:"startsAt,omitzero"`
	// EndsAt is set only for resolved alerts.
	EndsAt time.Time `json:"endsAt,omitzero"`
	// GeneratorURL is empty.
	GeneratorURL string `json:"generatorURL"`
}

// AlertmanagerAlerts converts n's alerts for Alertmanager. Label names are
// made valid Prometheus label names (other characters become '_'), empty
// values are dropped (Alertmanager treats them as absent), and alertname,
// kind, name and severity come from the alert's fields, host from the
// notification (the daemon's --host). Alerts of test
// notifications get the label test="true". The label sets an alert had
// before (Alert.Replaced) are sent as ended.
func AlertmanagerAlerts(n Notification) []AlertmanagerAlert {
	out := make([]AlertmanagerAlert, 0, len(n.Alerts))
	for _, a := range n.Alerts {
		labels := map[string]string{}
		keys := make([]string, 0, len(a.Labels))
		for k := range a.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name, v := labelName(k), strings.ToValidUTF8(a.Labels[k], "\uFFFD")
			if _, dup := labels[name]; name == "" || v == "" || dup {
				continue
			}
			labels[name] = v
		}
		for k, v := range map[string]string{"alertname": a.Name, "kind": a.Kind, "name": a.Object, "severity": a.Severity, "host": n.Host} {
			if v != "" {
				labels[k] = strings.ToValidUTF8(v, "\uFFFD")
			}
		}
		if n.Test {
			// Keeps a test alert apart from a real one with the same labels.
			labels["test"] = "true"
		}
		am := AlertmanagerAlert{
			Labels: labels,
			Annotations: map[string]string{
				"summary":     strings.ToValidUTF8(summaryOf(a), "\uFFFD"),
				"description": strings.ToValidUTF8(a.Message, "\uFFFD"),
			},
			StartsAt: a.StartsAt,
		}
		if !a.Firing() {
			am.EndsAt = a.EndsAt
		}
		out = append(out, am)
		// The label sets it fired with before (a Check's earlier levels)
		// are other alerts to Alertmanager: they ended.
		for _, old := range a.Replaced {
			prev := AlertmanagerAlert{Labels: maps.Clone(labels), Annotations: am.Annotations, StartsAt: a.StartsAt, EndsAt: n.CreatedAt}
			for k, v := range old {
				if name := labelName(k); name != "" && v != "" && prev.Labels[name] != "" {
					prev.Labels[name] = strings.ToValidUTF8(v, "\uFFFD")
				}
			}
			if !maps.Equal(prev.Labels, labels) {
				out = append(out, prev)
			}
		}
	}
	return out
}

// labelName maps k to a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*).
func labelName(k string) string {
	if k == "" {
		return ""
	}
	b := []byte(k)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// alertmanagerReceiver posts alerts to Alertmanager's API.
type alertmanagerReceiver struct {
	name string
	url  *url.URL // .../api/v2/alerts
	o    Options
}

func newAlertmanager(spec v1alpha1.AlertmanagerReceiver, name string, o Options) (*alertmanagerReceiver, error) {
	u, err := parseHTTPURL(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("alertmanager url: %w", err)
	}
	c := *u
	c.Path = strings.TrimRight(c.Path, "/") + "/api/v2/alerts"
	c.RawPath = ""
	return &alertmanagerReceiver{name: name, url: &c, o: o}, nil
}

// Name implements Receiver.
func (r *alertmanagerReceiver) Name() string { return r.name }

// Send implements Receiver: one POST /api/v2/alerts with all alerts of n.
func (r *alertmanagerReceiver) Send(ctx context.Context, n Notification) error {
	alerts := AlertmanagerAlerts(n)
	if len(alerts) == 0 {
		return nil
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return post(ctx, r.url, body, h, r.o.Timeout)
}
