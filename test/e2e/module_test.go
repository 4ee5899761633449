// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
)

// module is the subset of a Module object the tests read.
type module struct {
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
	Status struct {
		ObservedGeneration int64  `json:"observedGeneration"`
		Phase              string `json:"phase"`
		UnitFile           string `json:"unitFile"`
		ActiveState        string `json:"activeState"`
		SubState           string `json:"subState"`
		MainPID            int    `json:"mainPID"`
		NRestarts          int64  `json:"nRestarts"`
		Result             string `json:"result"`
		Conditions         []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (m module) ready() (status, reason, message string) {
	for _, c := range m.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

func (e *env) getModule(name string) (module, bool) {
	out, _, code := e.ctlQuiet("get", "module/"+name, "-o", "json")
	var m module
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
		return m, false
	}
	return m, true
}

func (e *env) waitModule(name, what string, cond func(m module) bool) module {
	e.t.Helper()
	var last module
	e.eventually(name+": "+what, func() bool {
		m, ok := e.getModule(name)
		last = m
		return ok && cond(m)
	})
	return last
}

func moduleYAML(name, exec, extra string) string {
	return fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Module\nmetadata: {name: %s}\nspec:\n  description: e2e module %s\n  exec: %s\n%s", name, name, exec, extra)
}

// systemctl runs systemctl against the sandbox and returns its trimmed
// output (is-active and friends exit non-zero for "inactive").
func systemctl(sb *systemdtest.Sandbox, args ...string) string {
	out, _ := sb.Systemctl(args...)
	return out
}

// A Module against a real systemd (PID 1 of private namespaces): created
// and active, restarted with a new ExecStart, an outside `systemctl stop`
// reverted, Stopped, disabled, restarted on request, the journal in
// describe, a failing unit raising ModuleFailed, UnitConflict with a foreign
// unit, a Type=notify unit, deletion, and deletion while the daemon is down.
func TestModuleLifecycle(t *testing.T) {
	sb := systemdtest.Start(t)
	alertFile := filepath.Join(t.TempDir(), "alerts.jsonl")
	e := newEnv(t, "--systemd-root", sb.Root)
	e.start()
	e.write("alerts.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: modules}
spec:
  match: {kinds: [Module]}
  groupWait: 100ms
  receivers:
  - exec: {command: ["/bin/sh", "-c", "cat >> %s; echo >> %s"]}
`, alertFile, alertFile))

	// Created: the unit file is rendered, loaded, enabled and started.
	webFile := e.write("web.yaml", moduleYAML("web", `["/bin/sh", "-c", "echo hello from web $0; exec sleep 1000", "first"]`, ""))
	web := e.waitModule("web", "Active", func(m module) bool { return m.Status.Phase == "Active" && m.Status.MainPID > 0 })
	if web.Status.UnitFile != "/etc/systemd/system/web.service" || web.Status.SubState != "running" {
		t.Fatalf("status: %+v", web.Status)
	}
	if s := systemctl(sb, "is-enabled", "web.service"); s != "enabled" {
		t.Fatalf("is-enabled: %q", s)
	}
	unitFile := filepath.Join(sb.UnitDir, "web.service")
	if b, _ := os.ReadFile(unitFile); !strings.Contains(string(b), "reconciled") {
		t.Fatalf("unit file lacks the marker:\n%s", b)
	}
	e.eventually("status written to the file", func() bool { return strings.Contains(e.read("web.yaml"), "phase: Active") })

	// A spec change restarts the unit with the new ExecStart.
	os.WriteFile(webFile, []byte(moduleYAML("web", `["/bin/sh", "-c", "echo hello from web $0; exec sleep 1000", "second"]`, "")), 0o644)
	web2 := e.waitModule("web", "restarted with the new spec", func(m module) bool {
		return m.Status.Phase == "Active" && m.Status.MainPID > 0 && m.Status.MainPID != web.Status.MainPID && m.Status.ObservedGeneration == m.Metadata.Generation
	})
	if s := systemctl(sb, "show", "-p", "ExecStart", "web.service"); !strings.Contains(s, "second") {
		t.Fatalf("ExecStart after the edit: %s", s)
	}

	// systemctl stop behind our back is noticed and reverted, with an event.
	sb.Exec("systemctl", "stop", "web.service")
	web3 := e.waitModule("web", "started again after an outside stop", func(m module) bool {
		return m.Status.Phase == "Active" && m.Status.MainPID > 0 && m.Status.MainPID != web2.Status.MainPID
	})
	if out := e.ctl("events", "module/web"); !strings.Contains(out, "StoppedExternally") {
		t.Fatalf("no StoppedExternally event:\n%s", out)
	}

	// reconcilectl restart module/NAME; describe shows the journal.
	if out := e.ctl("restart", "module/web"); !strings.Contains(out, "module/web restarted") {
		t.Fatalf("restart: %q", out)
	}
	e.waitModule("web", "restarted on request", func(m module) bool {
		return m.Status.Phase == "Active" && m.Status.MainPID > 0 && m.Status.MainPID != web3.Status.MainPID
	})
	e.eventually("journal in describe", func() bool {
		return strings.Contains(e.ctl("describe", "module/web"), "hello from web second")
	})

	// state: Stopped, enabled: false.
	os.WriteFile(webFile, []byte(moduleYAML("web", `["/bin/sh", "-c", "echo hello from web $0; exec sleep 1000", "second"]`, "  state: Stopped\n  enabled: false\n")), 0o644)
	e.waitModule("web", "Inactive", func(m module) bool {
		st, reason, _ := m.ready()
		return m.Status.Phase == "Inactive" && st == "True" && reason == "Stopped"
	})
	if s := systemctl(sb, "is-enabled", "web.service"); s != "disabled" {
		t.Fatalf("is-enabled after enabled: false: %q", s)
	}

	// A unit whose program fails: phase Failed and the ModuleFailed alert.
	e.write("bad.yaml", moduleYAML("bad", `["/bin/sh", "-c", "echo failing; exit 3"]`, "  restart: \"no\"\n"))
	bad := e.waitModule("bad", "Failed", func(m module) bool { return m.Status.Phase == "Failed" })
	if bad.Status.Result != "exit-code" {
		t.Fatalf("failed unit result: %+v", bad.Status)
	}
	e.eventually("ModuleFailed alert delivered", func() bool {
		b, _ := os.ReadFile(alertFile)
		return strings.Contains(string(b), "ModuleFailed") && strings.Contains(string(b), `"bad"`)
	})

	// A unit file reconciled did not write is never touched.
	foreign := "[Unit]\nDescription=not ours\n[Service]\nExecStart=/bin/sleep 1000\n"
	if err := sb.WriteUnit("foreign.service", foreign); err != nil {
		t.Fatal(err)
	}
	e.write("foreign.yaml", moduleYAML("foreign", `["/bin/true"]`, ""))
	e.waitModule("foreign", "UnitConflict", func(m module) bool {
		_, reason, _ := m.ready()
		return reason == "UnitConflict"
	})
	if b, _ := os.ReadFile(filepath.Join(sb.UnitDir, "foreign.service")); string(b) != foreign {
		t.Fatalf("foreign unit changed:\n%s", b)
	}

	// Nor a unit systemd already has from elsewhere (/lib/systemd/system).
	e.write("sysconflict.yaml", moduleYAML("sysconflict", `["/bin/true"]`, "  unitName: dbus.service\n"))
	e.waitModule("sysconflict", "UnitConflict with the system's dbus.service", func(m module) bool {
		_, reason, msg := m.ready()
		return reason == "UnitConflict" && strings.Contains(msg, "/lib/systemd/system/dbus.service")
	})
	if _, err := os.Stat(filepath.Join(sb.UnitDir, "dbus.service")); !os.IsNotExist(err) {
		t.Fatalf("a dbus.service was written over the system's: %v", err)
	}
	if s := systemctl(sb, "is-active", "dbus.service"); s != "active" {
		t.Fatalf("dbus.service: %s", s)
	}

	// Stopped clears the failure; Running then starts the unit again.
	os.WriteFile(filepath.Join(e.dir, "bad.yaml"), []byte(moduleYAML("bad", `["/bin/sh", "-c", "echo failing; exit 3"]`, "  restart: \"no\"\n  state: Stopped\n")), 0o644)
	e.waitModule("bad", "Inactive after Stopped", func(m module) bool { return m.Status.Phase == "Inactive" })
	os.WriteFile(filepath.Join(e.dir, "bad.yaml"), []byte(moduleYAML("bad", `["/bin/sh", "-c", "echo failing; exit 3"]`, "  restart: \"no\"\n")), 0o644)
	e.waitModule("bad", "Failed again after Running", func(m module) bool { return m.Status.Phase == "Failed" })
	e.eventually("bad started twice", func() bool {
		out := e.ctl("events", "module/bad")
		return strings.Contains(out, "Started") && (strings.Contains(out, "x2") || strings.Count(out, "Started") >= 2)
	})
	if out := e.ctl("events", "module/bad"); strings.Contains(out, "StoppedExternally") {
		t.Fatalf("our own Stopped -> Running counted as an outside stop:\n%s", out)
	}

	// Type=notify: active only once the program says READY=1.
	e.write("notify.yaml", moduleYAML("notify", `["/bin/sh", "-c", "sleep 0.2; systemd-notify --ready; exec sleep 1000"]`,
		"  type: notify\n  extra: {Service: {NotifyAccess: all}}\n"))
	e.waitModule("notify", "Active after READY=1", func(m module) bool { return m.Status.Phase == "Active" && m.Status.SubState == "running" })

	// Deleting the resource stops, disables and removes the unit.
	os.Remove(webFile)
	e.eventually("web.service removed", func() bool {
		_, err := os.Stat(unitFile)
		return os.IsNotExist(err) && systemctl(sb, "show", "-p", "LoadState", "web.service") == "LoadState=not-found"
	})
	if b, _ := os.ReadFile(filepath.Join(sb.UnitDir, "foreign.service")); string(b) != foreign {
		t.Fatalf("foreign unit changed after deletions:\n%s", b)
	}

	// Deleted while the daemon is down (kill -9): cleaned up at start.
	e.stop(syscall.SIGKILL)
	os.Remove(filepath.Join(e.dir, "notify.yaml"))
	e.start()
	e.eventually("notify.service removed after the restart", func() bool {
		_, err := os.Stat(filepath.Join(sb.UnitDir, "notify.service"))
		return os.IsNotExist(err) && systemctl(sb, "is-active", "notify.service") != "active"
	})
	// The others were left alone by the restart.
	if _, err := os.Stat(filepath.Join(sb.UnitDir, "bad.service")); err != nil {
		t.Fatalf("bad.service gone after the restart: %v", err)
	}
}

// scope: user drives a user's systemd through the session bus: the unit
// goes to $XDG_CONFIG_HOME/systemd/user, starts, and is removed with its
// resource.
func TestModuleUserScope(t *testing.T) {
	sb := systemdtest.StartUser(t)
	e := newEnv(t)
	e.env = []string{"DBUS_SESSION_BUS_ADDRESS=" + sb.BusAddress, "XDG_RUNTIME_DIR=" + sb.RuntimeDir, "XDG_CONFIG_HOME=" + sb.ConfigHome}
	e.start()
	f := e.write("u.yaml", moduleYAML("usersvc", `["/bin/sleep", "1000"]`, "  scope: user\n"))
	m := e.waitModule("usersvc", "Active", func(m module) bool { return m.Status.Phase == "Active" && m.Status.MainPID > 0 })
	unitFile := filepath.Join(sb.UnitDir, "usersvc.service")
	if m.Status.UnitFile != unitFile {
		t.Fatalf("unitFile %q, want %q", m.Status.UnitFile, unitFile)
	}
	if s, err := sb.Systemctl("is-enabled", "usersvc.service"); s != "enabled" {
		t.Fatalf("is-enabled: %q %v", s, err)
	}
	os.Remove(f)
	e.eventually("user unit removed", func() bool {
		_, err := os.Stat(unitFile)
		s, _ := sb.Systemctl("is-active", "usersvc.service")
		return os.IsNotExist(err) && s != "active"
	})
}
