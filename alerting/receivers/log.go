// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
)

// logReceiver writes notifications to the daemon's log.
type logReceiver struct {
	name string
	log  logr.Logger
}

// Name implements Receiver.
func (l *logReceiver) Name() string { return l.name }

// Send implements Receiver: one Info (V(0)) line per notification, with
// route, status, test, id, groupKey, host and one summary per alert. It
// always succeeds.
func (l *logReceiver) Send(_ context.Context, n Notification) error {
	summaries := make([]string, 0, len(n.Alerts))
	for _, a := range n.Alerts {
		state := StatusFiring
		if !a.Firing() {
			state = StatusResolved
		}
		summaries = append(summaries, fmt.Sprintf("%s %s/%s %s: %s", a.Name, a.Kind, a.Object, state, summaryOf(a)))
	}
	l.log.Info("Alert notification", "subject", Subject(n), "route", n.Route, "status", statusOf(n),
		"test", n.Test, "id", notificationID(n), "groupKey", n.GroupKey, "host", n.Host, "alerts", summaries)
	return nil
}
