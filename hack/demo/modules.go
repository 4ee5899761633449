// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/reconciled/reconciled/test/fixtures/mqtttest"
	"github.com/reconciled/reconciled/test/fixtures/systemdtest"
)

// modules is the module manager story: systemd units generated from
// Modules, driven over D-Bus, and commanded over MQTT.
var modules = demo{
	about: "Modules as units of a real systemd (in private namespaces), MQTT commands through mosquitto",
	setup: func(r *run) ([]string, []condition) {
		sb := systemdtest.Start(r)
		broker := mqtttest.Start(r)
		r.values["SMTP"] = startMailSink(r)
		r.values["Broker"] = broker.URL()
		r.values["BrokerUser"] = broker.Username
		r.values["BrokerPasswordFile"] = broker.PasswordFile
		r.values["sandbox"] = sb
		r.values["mqtt"] = strings.Join(broker.ClientArgs(), " ")
		r.writeResources()
		return []string{"--systemd-root", sb.Root, "--config", filepath.Join(r.dir, "reconciled.conf")},
			[]condition{phaseIs("modules", "sensor-reader", "Active")}
	},
	tryThis: func(r *run) string {
		sb := r.values["sandbox"].(*systemdtest.Sandbox)
		return fmt.Sprintf(`Try (the sandbox's systemctl: SDTEST_DIR=%[1]s %[2]s/hack/systemd-sandbox.sh exec systemctl ...):
  SDTEST_DIR=%[1]s %[2]s/hack/systemd-sandbox.sh exec systemctl status sensor-reader
  SDTEST_DIR=%[1]s %[2]s/hack/systemd-sandbox.sh exec systemctl stop sensor-reader   # reverted: StoppedExternally
  mosquitto_pub %[3]s -t module_manager/command/module/hello/create -m '{"exec": ["/bin/sleep", "infinity"]}'
  mosquitto_pub %[3]s -t module_manager/command/module/hello/stop -m ''     # start, restart, remove too
  mosquitto_sub %[3]s -t 'module_manager/status/#' -v
  (MQTT commands change Modules created through the API or MQTT; sensor-reader lives in a file: edit it there.)
  reconcilectl describe module/sensor-reader    # with the unit's journal
Edit exec to ["/bin/false"]: systemd restarts it in a loop, reconciled reports CrashLoop and mails it.`, sb.Dir, r.repo, r.values["mqtt"])
	},
	exercise: func(r *run) {
		pub := func(topic, payload string) {
			args := append(strings.Fields(r.values["mqtt"].(string)), "-q", "1", "-t", "module_manager/command/module/"+topic, "-m", payload)
			if out, err := exec.Command("mosquitto_pub", args...).CombinedOutput(); err != nil {
				r.Fatalf("mosquitto_pub: %v %s", err, out)
			}
		}
		pub("hello/create", `{"exec": ["/bin/sleep", "infinity"]}`)
		r.waitFor(phaseIs("modules", "hello", "Active"))
		pub("hello/stop", "")
		r.waitFor(phaseIs("modules", "hello", "Inactive"))
		// A module that fails at start is a crash loop, and mailed.
		res := filepath.Join(r.dir, "resources", "modules.yaml")
		b, _ := os.ReadFile(res)
		broken := strings.Replace(string(b), `exec: ["/bin/sh", "-c", "while :; do echo reading sensors; sleep 5; done"]`, `exec: ["/bin/false"]`, 1)
		// 3 s apart, systemd never hits its start limit (5 in 10 s): only
		// reconciled's crash-loop detection makes this a failure.
		broken = strings.Replace(broken, "restartSec: 1s", "restartSec: 3s", 1)
		r.writeFile(res, broken, 0o644)
		r.waitFor(receivedOne("[FIRING] Module sensor-reader failed"))
	},
}
