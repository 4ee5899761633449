// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// unitProps reads properties of a unit as a map (systemctl show -p ...).
func unitProps(sb *systemdtest.Sandbox, unit string, props ...string) map[string]string {
	out, _ := sb.Systemctl("show", "-p", strings.Join(props, ","), unit)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestUnderSystemd runs the shipped deploy/reconciled.{service,socket}
// (hardening included; only the binary, folders and WatchdogSec changed)
// under a real systemd: the socket is listening before the daemon runs and
// the first connection activates it; the unit becomes active only with
// READY=1 (STATUS= already showing resource counts); the watchdog is fed;
// the API is served over the inherited listener; `systemctl stop` leaves
// the supervised program running (KillMode=process, the documented
// policy), and the next start adopts it.
func TestUnderSystemd(t *testing.T) {
	sb := systemdtest.Start(t)
	share := sb.ShareDir
	bin := filepath.Join(share, "reconciled")
	b, err := os.ReadFile(reconciled)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(b))
	os.Chmod(bin, 0o755)
	resDir, stateDir := filepath.Join(share, "resources"), filepath.Join(share, "state")
	os.MkdirAll(resDir, 0o755)
	writeFile(t, filepath.Join(resDir, "sleeper.yaml"), fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: sleeper
spec:
  command: ["/bin/sleep", "1000"]
  env: {E2E_DIR: %q}
`, resDir))
	// A Module too: the hardened daemon must still write unit files into
	// /etc/systemd/system (ProtectSystem=full, ReadWritePaths=) and drive
	// systemd over the bus.
	writeFile(t, filepath.Join(resDir, "web.yaml"), moduleYAML("rcweb", `["/bin/sleep", "1000"]`, ""))

	svc, err := os.ReadFile("../../deploy/reconciled.service")
	if err != nil {
		t.Fatal(err)
	}
	sock, err := os.ReadFile("../../deploy/reconciled.socket")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(svc)
	for re, repl := range map[string]string{
		`(?m)^ExecStart=.*$`:   "ExecStart=" + bin + " --dir " + resDir + " --state-dir " + stateDir + " -v 1",
		`(?m)^WatchdogSec=.*$`: "WatchdogSec=2s",
	} {
		if !regexp.MustCompile(re).MatchString(unit) {
			t.Fatalf("deploy/reconciled.service has no line %s", re)
		}
		unit = regexp.MustCompile(re).ReplaceAllLiteralString(unit, repl)
	}
	for _, want := range []string{"Type=notify", "NotifyAccess=main", "KillMode=process", "Restart=on-failure"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Fatalf("deploy/reconciled.service lacks %s", want)
		}
	}
	if !strings.Contains(string(sock), "ListenStream=127.0.0.1:9470") {
		t.Fatalf("deploy/reconciled.socket does not listen on 127.0.0.1:9470:\n%s", sock)
	}
	if err := sb.WriteUnit("reconciled.service", unit); err != nil {
		t.Fatal(err)
	}
	if err := sb.WriteUnit("reconciled.socket", string(sock)); err != nil {
		t.Fatal(err)
	}
	var sleepPid int
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := sb.Journal("reconciled.service")
			t.Logf("journal of reconciled.service:\n%s", out)
		}
		if sleepPid > 0 {
			sb.Exec("kill", "-KILL", strconv.Itoa(sleepPid))
		}
	})
	if out, err := sb.Systemctl("daemon-reload"); err != nil {
		t.Fatalf("daemon-reload: %v %s", err, out)
	}
	if out, err := sb.Systemctl("start", "reconciled.socket"); err != nil {
		t.Fatalf("start reconciled.socket: %v %s", err, out)
	}
	if s := unitProps(sb, "reconciled.service", "ActiveState")["ActiveState"]; s != "inactive" {
		t.Fatalf("reconciled.service is %s before any connection", s)
	}

	// The first connection activates the service; meanwhile, every look at
	// the unit that finds it active must also find STATUS= set: READY=1
	// and STATUS= come in one message, so active means READY was seen.
	t0 := time.Now()
	curlDone := make(chan error, 1)
	var healthz string
	go func() {
		out, err := sb.Exec("curl", "-sS", "--max-time", "60", "http://127.0.0.1:9470/healthz")
		healthz = out
		curlDone <- err
	}()
	var states []string
	var props map[string]string
	waitfor.Within(t, 60*time.Second, "reconciled.service active", func() bool {
		props = unitProps(sb, "reconciled.service", "ActiveState", "SubState", "StatusText", "NRestarts", "MainPID", "Type", "WatchdogUSec")
		st := props["ActiveState"] + "/" + props["SubState"]
		if len(states) == 0 || states[len(states)-1] != st {
			states = append(states, st)
		}
		if props["ActiveState"] == "active" && !strings.Contains(props["StatusText"], "processes") {
			t.Fatalf("active before READY=1/STATUS=: %v", props)
		}
		return props["ActiveState"] == "active"
	})
	if err := <-curlDone; err != nil || !strings.Contains(healthz, "ok") {
		t.Fatalf("healthz over the activated socket: %v %q", err, healthz)
	}
	t.Logf("socket activation to active in %s; states seen %v; %v", time.Since(t0).Round(time.Millisecond), states, props)
	if props["Type"] != "notify" || props["StatusText"] != "1 processes, 1 modules" || props["NRestarts"] != "0" || props["WatchdogUSec"] != "2s" {
		t.Fatalf("service properties: %v", props)
	}
	mainPid := props["MainPID"]
	// The hardening is in effect (so the Module below shows it still lets
	// the daemon work): /usr is read-only in the daemon's mount namespace.
	if out, err := sb.Exec("nsenter", "-t", mainPid, "-m", "touch", "/usr/.reconciled-probe"); err == nil || !strings.Contains(err.Error(), "Read-only") {
		t.Fatalf("ProtectSystem=full not in effect: touch /usr in the daemon's namespace: %v %s", err, out)
	}
	journal, _ := sb.Journal("reconciled.service")
	if !strings.Contains(journal, "using socket-activated listener") || !strings.Contains(journal, "127.0.0.1:9470") {
		t.Fatalf("the daemon did not take the activated listener:\n%s", journal)
	}
	// The daemon says it serves before systemd says it started it.
	if i, j := strings.Index(journal, "serving API"), strings.Index(journal, "Started "); i < 0 || j < 0 || i > j {
		t.Fatalf("\"Started\" before the daemon served (READY too early?):\n%s", journal)
	}

	// The API over the activated socket: the Process is Running.
	var p process
	waitfor.Within(t, waitTimeout, "process/sleeper Running (over the activated socket)", func() bool {
		out, err := sb.Exec("curl", "-sS", "--max-time", "10", "http://127.0.0.1:9470/apis/reconciled.dev/v1alpha1/processes/sleeper")
		return err == nil && json.Unmarshal([]byte(out), &p) == nil && p.Status.Phase == "Running" && p.Status.Pid > 0
	})
	sleepPid = p.Status.Pid
	var m module
	waitfor.Within(t, waitTimeout, "module/rcweb Active", func() bool {
		out, err := sb.Exec("curl", "-sS", "--max-time", "10", "http://127.0.0.1:9470/apis/reconciled.dev/v1alpha1/modules/rcweb")
		return err == nil && json.Unmarshal([]byte(out), &m) == nil && m.Status.Phase == "Active"
	})
	if s := systemctl(sb, "is-active", "rcweb.service"); s != "active" || m.Status.UnitFile != "/etc/systemd/system/rcweb.service" {
		t.Fatalf("module unit: is-active %q, status %+v", s, m.Status)
	}

	// The watchdog is fed: three periods later, still the same active
	// process, never restarted, and systemd saw pings after activation.
	wd0 := unitProps(sb, "reconciled.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
	watchStart := time.Now()
	for time.Since(watchStart) < 3*2*time.Second {
		props = unitProps(sb, "reconciled.service", "ActiveState", "NRestarts", "MainPID")
		if props["ActiveState"] != "active" || props["NRestarts"] != "0" || props["MainPID"] != mainPid {
			t.Fatalf("watchdog period %s after activation: %v (main pid was %s)", time.Since(watchStart).Round(time.Millisecond), props, mainPid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if wd1 := unitProps(sb, "reconciled.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]; wd1 == wd0 || wd1 == "0" {
		t.Fatalf("no watchdog ping in 6s: WatchdogTimestampMonotonic %s -> %s", wd0, wd1)
	}

	// systemctl stop: the daemon goes, the supervised program stays.
	if out, err := sb.Systemctl("stop", "reconciled.service"); err != nil {
		t.Fatalf("stop: %v %s", err, out)
	}
	waitfor.Within(t, waitTimeout, "reconciled.service inactive", func() bool {
		return unitProps(sb, "reconciled.service", "ActiveState")["ActiveState"] == "inactive"
	})
	if _, err := sb.Exec("kill", "-0", mainPid); err == nil {
		t.Fatalf("the daemon (pid %s) still runs after stop", mainPid)
	}
	if _, err := sb.Exec("kill", "-0", strconv.Itoa(sleepPid)); err != nil {
		t.Fatalf("the supervised sleep (pid %d) did not survive systemctl stop: %v", sleepPid, err)
	}
	if s := unitProps(sb, "reconciled.service", "Result")["Result"]; s != "success" {
		t.Fatalf("stop result %q", s)
	}

	// The next start (a connection again) adopts it: same pid, no restart.
	if out, err := sb.Exec("curl", "-sS", "--max-time", "60", "http://127.0.0.1:9470/healthz"); err != nil {
		t.Fatalf("healthz after stop: %v %q", err, out)
	}
	waitfor.Within(t, waitTimeout, "process/sleeper adopted", func() bool {
		out, err := sb.Exec("curl", "-sS", "--max-time", "10", "http://127.0.0.1:9470/apis/reconciled.dev/v1alpha1/processes/sleeper")
		return err == nil && json.Unmarshal([]byte(out), &p) == nil && p.Status.Phase == "Running" && p.Status.Pid > 0
	})
	if p.Status.Pid != sleepPid || p.Status.Restarts != 0 {
		t.Fatalf("after restart of the daemon: pid %d (was %d), restarts %d", p.Status.Pid, sleepPid, p.Status.Restarts)
	}
	sb.Systemctl("stop", "reconciled.socket", "reconciled.service", "rcweb.service")
}
