// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/mqtttest"
	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
)

// modulesOverMQTT starts a real systemd, a mosquitto with password auth,
// and the daemon driving that systemd and bridged to that broker under
// the seed's topic prefix, module_manager.
func modulesOverMQTT(t *testing.T) (*env, *systemdtest.Sandbox, *mqtttest.Broker) {
	t.Helper()
	sb := systemdtest.Start(t)
	b := mqtttest.Start(t)
	cfg := filepath.Join(t.TempDir(), "reconciled.yaml")
	writeFile(t, cfg, fmt.Sprintf("mqtt:\n  broker: %q\n  username: %s\n  passwordFile: %q\n  topicPrefix: module_manager\n", b.URL(), b.Username, b.PasswordFile))
	e := newEnv(t, "--systemd-root", sb.Root, "--config", cfg)
	e.start()
	return e, sb, b
}

// The module manager's users drove it over MQTT: create, start, stop,
// restart, remove. Here the same five commands go through a real mosquitto
// (password auth) to Modules on a real systemd, statuses come back
// retained, a malformed command is answered on <prefix>/error, and the
// bridge reconnects by itself after the broker restarts.
func TestMQTTModuleCommands(t *testing.T) {
	e, sb, b := modulesOverMQTT(t)

	pub := func(topic, payload string) {
		t.Helper()
		args := append(b.ClientArgs(), "-q", "1", "-t", "module_manager/"+topic, "-m", payload)
		if out, err := exec.Command("mosquitto_pub", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub %s: %v\n%s", topic, err, out)
		}
	}
	// retained returns the retained message of a topic (a subscriber that
	// arrives after the publish still gets it).
	retained := func(topic string) string {
		args := append(b.ClientArgs(), "-C", "1", "-W", "5", "-t", "module_manager/"+topic)
		out, _ := exec.Command("mosquitto_sub", args...).Output()
		return strings.TrimSpace(string(out))
	}
	status := func() (phase string) {
		var st struct{ Phase string }
		json.Unmarshal([]byte(retained("status/module/sensor")), &st)
		return st.Phase
	}

	// create, with the seed's kind of payload: just the settings.
	e.eventually("bridge online", func() bool { return retained("bridge/state") == "online" })
	pub("command/module/sensor/create", `{"description": "sensor reader", "exec": ["/bin/sleep", "1000"]}`)
	m := e.waitModule("sensor", "Active", func(m module) bool { return m.Status.Phase == "Active" && m.Status.MainPID > 0 })
	if _, err := os.Stat(filepath.Join(e.dir, "api", "module-sensor.yaml")); err != nil {
		t.Fatalf("create did not go through a file under api/: %v", err)
	}
	e.eventually("retained status Active", func() bool { return status() == "Active" })

	// stop and start edit spec.state; systemd follows.
	pub("command/module/sensor/stop", "")
	e.waitModule("sensor", "Inactive", func(m module) bool { return m.Status.Phase == "Inactive" })
	if s := systemctl(sb, "is-active", "sensor.service"); s != "inactive" {
		t.Fatalf("after stop: %s", s)
	}
	e.eventually("retained status Inactive", func() bool { return status() == "Inactive" })
	pub("command/module/sensor/start", "")
	m = e.waitModule("sensor", "Active again", func(m module) bool { return m.Status.Phase == "Active" && m.Status.MainPID > 0 })
	if out := e.ctl("events", "module/sensor"); strings.Contains(out, "StoppedExternally") {
		t.Fatalf("stop + start through MQTT counted as an outside stop:\n%s", out)
	}

	// restart: a new main process.
	pub("command/module/sensor/restart", "")
	m = e.waitModule("sensor", "restarted", func(x module) bool {
		return x.Status.Phase == "Active" && x.Status.MainPID > 0 && x.Status.MainPID != m.Status.MainPID
	})

	// A malformed command changes nothing and is answered on the error topic.
	errs := exec.Command("mosquitto_sub", append(b.ClientArgs(), "-C", "1", "-W", "10", "-t", "module_manager/error")...)
	var errOut strings.Builder
	errs.Stdout = &errOut
	if err := errs.Start(); err != nil {
		t.Fatal(err)
	}
	e.eventually("a malformed command answered", func() bool {
		pub("command/module/sensor/explode", "")
		return strings.Contains(errOut.String(), "explode")
	})
	errs.Process.Kill()
	errs.Wait()
	if x, _ := e.getModule("sensor"); x.Status.MainPID != m.Status.MainPID {
		t.Fatalf("a malformed command changed the module: pid %d -> %d", m.Status.MainPID, x.Status.MainPID)
	}

	// The broker goes away and comes back: the bridge reconnects by
	// itself (commands sent while it was away are lost, so keep asking).
	b.Stop()
	b.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pub("command/module/sensor/stop", "")
		if x, _ := e.getModule("sensor"); x.Status.Phase == "Inactive" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no command got through after the broker restart; daemon log:\n%s", e.log.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.eventually("retained status after the reconnect", func() bool { return status() == "Inactive" })

	// remove: the resource, its file and its unit are gone.
	pub("command/module/sensor/remove", "")
	e.eventually("module removed", func() bool {
		_, ok := e.getModule("sensor")
		_, err := os.Stat(filepath.Join(sb.UnitDir, "sensor.service"))
		return !ok && os.IsNotExist(err)
	})
	e.eventually("retained status cleared", func() bool { return retained("status/module/sensor") == "" })
}
