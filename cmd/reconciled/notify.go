// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// statusLine is the STATUS= text systemctl status shows.
func statusLine(store *resources.Store) string {
	counts, invalid := store.Counts()
	perKind := map[string]int{}
	for k, n := range counts {
		perKind[k.Kind] += n
	}
	var parts []string
	for _, k := range v1alpha1.Kinds {
		if n := perKind[k.Kind]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k.Plural))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no resources")
	}
	s := "STATUS=" + strings.Join(parts, ", ")
	if invalid > 0 {
		s += fmt.Sprintf(", %d invalid", invalid)
	}
	return s
}

// notifyLoop feeds systemd's watchdog (when WatchdogSec= is set) and keeps
// STATUS= current until ctx is done.
func notifyLoop(ctx context.Context, store *resources.Store) error {
	interval := 10 * time.Second
	wd, _ := daemon.SdWatchdogEnabled(false)
	if wd > 0 {
		interval = min(interval, wd/2)
	} else if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			msg := statusLine(store)
			if wd > 0 {
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
			if msg != last {
				daemon.SdNotify(false, msg)
				last = msg
			}
		}
	}
}
