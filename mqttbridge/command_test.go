// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

const moduleYAML = `apiVersion: reconciled.dev/v1alpha1
kind: Module
metadata:
  name: sensor
spec:
  exec: [/usr/bin/python3, main.py] # the reader
`

func TestParseCommand(t *testing.T) {
	for name, tc := range map[string]struct {
		topic   string
		payload string
		want    Command
	}{
		"start a module":           {"rc/command/module/sensor/start", "", Command{Kind: "Module", Name: "sensor", Action: ActionStart}},
		"stop, plural kind":        {"rc/command/modules/sensor/stop", "", Command{Kind: "Module", Name: "sensor", Action: ActionStop}},
		"restart, short kind":      {"rc/command/mod/sensor/restart", "", Command{Kind: "Module", Name: "sensor", Action: ActionRestart}},
		"restart a process":        {"rc/command/process/web/restart", "", Command{Kind: "Process", Name: "web", Action: ActionRestart}},
		"kind and action any case": {"rc/command/Proc/web/ReStart", "", Command{Kind: "Process", Name: "web", Action: ActionRestart}},
		"payload ignored":          {"rc/command/module/sensor/stop", `{"config_id":"123","action":"start"}`, Command{Kind: "Module", Name: "sensor", Action: ActionStop}},
		"remove":                   {"rc/command/module/sensor/remove", "whatever", Command{Kind: "Module", Name: "sensor", Action: ActionRemove}},
		"create, whole YAML":       {"rc/command/module/sensor/create", moduleYAML, Command{Kind: "Module", Name: "sensor", Action: ActionCreate, Body: []byte(moduleYAML)}},
		"restart every module":     {"rc/command/module/all/restart", "", Command{Kind: "Module", Name: "all", Action: ActionRestart, All: true, Timeout: DefaultRestartAllTimeout}},
		"restart every module, selected, timeout": {"rc/command/modules/all/restart", `{"selector": "site in (ark, hub)", "timeout": "20s"}`,
			Command{Kind: "Module", Name: "all", Action: ActionRestart, All: true, Selector: "site in (ark, hub)", Timeout: 20 * time.Second}},
		"a module named all is stopped alone": {"rc/command/module/all/stop", "", Command{Kind: "Module", Name: "all", Action: ActionStop}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseCommand("rc", tc.topic, []byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// The seed's users send just the spec, as JSON: it becomes a Module named
// after the topic, in block style.
func TestParseCommandWrapsSpec(t *testing.T) {
	for name, payload := range map[string]string{
		"JSON": `{"exec": ["/usr/bin/python3", "main.py"], "workingDirectory": "/opt/sensor", "environment": {"PORT": "8080"}, "state": "Stopped"}`,
		"YAML": "exec: [/usr/bin/python3, main.py]\nworkingDirectory: /opt/sensor\nenvironment:\n  PORT: \"8080\"\nstate: Stopped\n",
	} {
		t.Run(name, func(t *testing.T) {
			cmd, err := ParseCommand("site/a", "site/a/command/module/sensor/create", []byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			docs, err := resources.DecodeFile("body", cmd.Body)
			if err != nil || len(docs) != 1 {
				t.Fatalf("body does not decode (%v):\n%s", err, cmd.Body)
			}
			if len(docs[0].Errs) > 0 {
				t.Fatalf("body is invalid: %v\n%s", docs[0].Errs, cmd.Body)
			}
			m := docs[0].Object.(*v1alpha1.Module)
			if m.Name != "sensor" || m.Spec.WorkingDirectory != "/opt/sensor" || m.Spec.Environment["PORT"] != "8080" ||
				m.Spec.State != "Stopped" || len(m.Spec.Exec) != 2 {
				t.Errorf("decoded module = %+v", m)
			}
			if strings.Contains(string(cmd.Body), "{") {
				t.Errorf("body kept JSON's flow style:\n%s", cmd.Body)
			}
		})
	}
}

func TestParseCommandErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		topic, payload string
		want           string // in the error
	}{
		"other prefix":          {"other/command/module/sensor/start", "", "not under rc/command/"},
		"prefix of a prefix":    {"rcx/command/module/sensor/start", "", "not under rc/command/"},
		"too few levels":        {"rc/command/module/sensor", "", "has 2 levels"},
		"too many levels":       {"rc/command/module/sensor/start/now", "", "has 4 levels"},
		"empty level":           {"rc/command/module//start", "", "invalid name"},
		"unknown kind":          {"rc/command/gizmo/sensor/start", "", `unknown kind "gizmo"`},
		"bad name":              {"rc/command/module/Sensor_1/start", "", "invalid name"},
		"unknown action":        {"rc/command/module/sensor/explode", "", `unknown action "explode"`},
		"seed's command topic":  {"rc/command/create_new_systemctl_service", `{"config_id":"123"}`, "has 1 levels"},
		"create a process":      {"rc/command/process/web/create", `{"command": ["/bin/true"]}`, "for modules only"},
		"remove a link":         {"rc/command/link/a2rtr/remove", "", "for modules only"},
		"create without body":   {"rc/command/module/sensor/create", " \n", "needs a payload"},
		"create, not a mapping": {"rc/command/module/sensor/create", `["a"]`, "must be a JSON object"},
		"create, scalar":        {"rc/command/module/sensor/create", `hello`, "must be a JSON object"},
		"create, bad JSON":      {"rc/command/module/sensor/create", `{"exec": [`, "not JSON or YAML"},
		"create, two documents": {"rc/command/module/sensor/create", moduleYAML + "---\n" + moduleYAML, "one JSON or YAML document, got 2"},
		"create, other kind":    {"rc/command/module/sensor/create", strings.Replace(moduleYAML, "kind: Module", "kind: Process", 1), `is a "Process"`},
		"create, other name":    {"rc/command/module/sensor/create", strings.Replace(moduleYAML, "name: sensor", "name: other", 1), `named "other"`},
		"create, no name":       {"rc/command/module/sensor/create", `{"kind": "Module", "spec": {}}`, `named ""`},
		"create, too large":     {"rc/command/module/sensor/create", "a: " + strings.Repeat("x", MaxPayload), "larger than"},
		"restart all, bad JSON": {"rc/command/module/all/restart", `{"selector": `, "payload must be empty or"},
		"restart all, unknown":  {"rc/command/module/all/restart", `{"config_id": "1"}`, "unknown field"},
		"restart all, selector": {"rc/command/module/all/restart", `{"selector": "a in"}`, `selector "a in"`},
		"restart all, timeout":  {"rc/command/module/all/restart", `{"timeout": "forever"}`, `timeout "forever"`},
		"restart all, too long": {"rc/command/module/all/restart", `{"timeout": "11m"}`, "at most 10m0s"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseCommand("rc", tc.topic, []byte(tc.payload))
			if err == nil {
				t.Fatalf("no error; got %+v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
