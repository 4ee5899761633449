// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
)

// The module manager's "restart all" (restart_configs): every Module
// restarted at once against a real systemd, with one answer that lists
// what came back and what failed, over MQTT (a real mosquitto) and with
// `reconcilectl restart modules --all` / `-l`.
func TestRestartAllModules(t *testing.T) {
	e, sb, b := modulesOverMQTT(t)
	// "flaky" runs while its flag file exists; without it, it fails at
	// start, so its restart fails.
	flag := filepath.Join(sb.ShareDir, "flaky-ok")
	writeFile(t, flag, "")
	e.write("a.yaml", moduleYAML("alpha", `["/bin/sleep", "1000"]`, ""))
	e.write("b.yaml", strings.Replace(moduleYAML("beta", `["/bin/sleep", "1000"]`, ""), "metadata: {name: beta}", "metadata: {name: beta, labels: {site: ark}}", 1))
	e.write("c.yaml", moduleYAML("flaky", fmt.Sprintf(`["/bin/sh", "-c", "test -f %s && exec sleep 1000; exit 3"]`, flag), "  restart: \"no\"\n"))
	e.write("d.yaml", moduleYAML("parked", `["/bin/sleep", "1000"]`, "  state: Stopped\n"))
	pids := map[string]int{}
	for _, n := range []string{"alpha", "beta", "flaky"} {
		pids[n] = e.waitModule(n, "Active", func(m module) bool { return m.Status.Phase == "Active" && m.Status.MainPID > 0 }).Status.MainPID
	}
	e.waitModule("parked", "Inactive", func(m module) bool { return m.Status.Phase == "Inactive" })
	os.Remove(flag)

	// MQTT, as the seed's users send it (no response topic): the answer
	// comes on <prefix>/reply.
	retained := func(topic string) string {
		out, _ := exec.Command("mosquitto_sub", append(b.ClientArgs(), "-C", "1", "-W", "5", "-t", "module_manager/"+topic)...).Output()
		return strings.TrimSpace(string(out))
	}
	e.eventually("bridge online", func() bool { return retained("bridge/state") == "online" })
	var answers syncbuf.Buffer
	sub := exec.Command("mosquitto_sub", append(b.ClientArgs(), "-W", "300", "-t", "module_manager/reply")...)
	sub.Stdout = &answers
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sub.Process.Kill(); sub.Wait() }()
	e.eventually("the subscriber is there", func() bool {
		// mosquitto_sub has no "subscribed" signal: a probe message on
		// the same topic tells.
		exec.Command("mosquitto_pub", append(b.ClientArgs(), "-q", "1", "-t", "module_manager/reply", "-m", "probe")...).Run()
		return strings.Contains(answers.String(), "probe")
	})
	if out, err := exec.Command("mosquitto_pub", append(b.ClientArgs(), "-q", "1", "-t", "module_manager/command/module/all/restart", "-m", "")...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
	var answer string
	e.eventually("the answer on module_manager/reply", func() bool {
		for _, line := range strings.Split(answers.String(), "\n") {
			if strings.Contains(line, `"report"`) {
				answer = line
				return true
			}
		}
		return false
	})
	var reply struct {
		Result string `json:"result"`
		Report struct {
			Restarted []string
			Failed    []struct{ Name, Error string }
			Skipped   []struct{ Name, Error string }
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(answer), &reply); err != nil {
		t.Fatalf("answer %q: %v", answer, err)
	}
	r := reply.Report
	if reply.Result != "failed" || !slices.Equal(r.Restarted, []string{"alpha", "beta"}) || len(r.Failed) != 1 || r.Failed[0].Name != "flaky" ||
		!strings.Contains(r.Failed[0].Error, "flaky.service is failed after the restart (result exit-code)") ||
		len(r.Skipped) != 1 || r.Skipped[0].Name != "parked" {
		t.Fatalf("answer %s", answer)
	}
	for _, n := range []string{"alpha", "beta"} {
		m, _ := e.getModule(n)
		if m.Status.MainPID == pids[n] || m.Status.Phase != "Active" {
			t.Errorf("%s: pid %d (was %d), phase %s: not restarted", n, m.Status.MainPID, pids[n], m.Status.Phase)
		}
		pids[n] = m.Status.MainPID
	}

	// reconcilectl: -l restarts only what matches; --all reports the
	// failure and exits 1.
	out, stderr, code := e.ctlQuiet("restart", "modules", "-l", "site=ark")
	if code != 0 || strings.TrimSpace(out) != "module/beta restarted" {
		t.Fatalf("restart modules -l site=ark: exit %d\n%s%s", code, out, stderr)
	}
	if m, _ := e.getModule("alpha"); m.Status.MainPID != pids["alpha"] {
		t.Errorf("alpha was restarted by -l site=ark")
	}
	out, stderr, code = e.ctlQuiet("restart", "modules", "--all")
	if code != 1 || !strings.Contains(out, "module/alpha restarted") || !strings.Contains(out, "module/beta restarted") ||
		!strings.Contains(out, "module/parked skipped: state: Stopped") || !strings.Contains(stderr, "error: module/flaky: flaky.service is failed after the restart") {
		t.Fatalf("restart modules --all: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	// Fixed: all come back, exit 0.
	writeFile(t, flag, "")
	out, stderr, code = e.ctlQuiet("restart", "modules", "--all")
	if code != 0 || !strings.Contains(out, "module/flaky restarted") {
		t.Fatalf("restart modules --all after the fix: exit %d\n%s%s", code, out, stderr)
	}
}
