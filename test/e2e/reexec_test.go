// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"strings"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
)

// systemd re-executing itself, and its bus restarting, under the Module
// controller: it keeps following and reverting the unit.
func TestModuleSurvivesSystemdReexec(t *testing.T) {
	sb := systemdtest.Start(t)
	e := newEnv(t, "--systemd-root", sb.Root)
	e.start()
	e.write("web.yaml", moduleYAML("web", `["/bin/sleep", "1000"]`, ""))
	m := e.waitModule("web", "Active", func(m module) bool { return m.Status.Phase == "Active" && m.Status.MainPID > 0 })
	if out, err := sb.Systemctl("daemon-reexec"); err != nil {
		t.Fatalf("daemon-reexec: %v %s", err, out)
	}
	e.eventually("systemd back", func() bool { s, _ := sb.Systemctl("is-system-running"); return s == "running" || s == "degraded" })
	sb.Exec("systemctl", "stop", "web.service")
	e.waitModule("web", "reverted after the reexec", func(x module) bool {
		return x.Status.Phase == "Active" && x.Status.MainPID > 0 && x.Status.MainPID != m.Status.MainPID
	})
	if !strings.Contains(e.ctl("events", "module/web"), "StoppedExternally") {
		t.Fatal("no StoppedExternally event")
	}
	// The bus itself restarts: the daemon reconnects by itself and still
	// follows the unit.
	m2, _ := e.getModule("web")
	if out, err := sb.Systemctl("restart", "dbus.service"); err != nil {
		t.Fatalf("restart dbus: %v %s", err, out)
	}
	e.eventually("dbus back", func() bool { s, _ := sb.Systemctl("is-active", "dbus.service"); return s == "active" })
	// A stop while the daemon may still be reconnecting: it is seen then
	// (the reconnect looks at every unit again) or as a signal.
	sb.Exec("systemctl", "stop", "web.service")
	e.waitModule("web", "reverted after the bus restart", func(x module) bool {
		return x.Status.Phase == "Active" && x.Status.MainPID > 0 && x.Status.MainPID != m2.Status.MainPID
	})
}
