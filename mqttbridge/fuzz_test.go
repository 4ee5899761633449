// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"bytes"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/internal/yamlnode"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// FuzzParseCommand: any topic and payload either is refused with an error
// or gives a command for a known kind, a valid name and a known action,
// from a topic under the prefix; a create's body is one mapping whose kind
// and metadata.name are the command's, and the other actions have none.
func FuzzParseCommand(f *testing.F) {
	f.Add("rc/command/module/sensor/start", []byte(""))
	f.Add("rc/command/mod/sensor/STOP", []byte("{}"))
	f.Add("rc/command/processes/web/restart", []byte(`{"config_id":"123"}`))
	f.Add("rc/command/module/sensor/create", []byte(`{"exec": ["/usr/bin/python3", "main.py"], "state": "Stopped"}`))
	f.Add("rc/command/module/sensor/create", []byte(moduleYAML))
	f.Add("rc/command/module/sensor/create", []byte("kind: Module\nmetadata: {name: sensor}\nkind: Process\n"))
	f.Add("rc/command/module/sensor/create", []byte("a: &x [*x]\n"))
	f.Add("rc/command/module/sensor/create", []byte("---\n---\nexec: [a]\n"))
	f.Add("rc/command/module/sensor/create", []byte(`{"exec": "a"} # trailing`))
	f.Add("rc/command/module/sensor/remove", []byte(nil))
	f.Add("rc/command/module/sensor", []byte(""))
	f.Add("rc/command//x/start", []byte(""))
	f.Add("rc/command/link/a/create", []byte("{}"))
	f.Add("rc/command/create_new_systemctl_service", []byte(`{"config_id":"123"}`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		cmd, err := ParseCommand("rc", topic, payload)
		if err != nil {
			return
		}
		if !strings.HasPrefix(topic, "rc/command/") {
			t.Fatalf("accepted topic %q outside the prefix", topic)
		}
		if ki, ok := v1alpha1.LookupKind(cmd.Kind); !ok || ki.Kind != cmd.Kind {
			t.Fatalf("kind %q is not a CamelCase kind", cmd.Kind)
		}
		if msgs := validation.IsDNS1123Label(cmd.Name); len(msgs) > 0 {
			t.Fatalf("accepted name %q: %v", cmd.Name, msgs)
		}
		switch cmd.Action {
		case ActionStart, ActionStop, ActionRestart, ActionRemove:
			if cmd.Body != nil {
				t.Fatalf("%s has a body", cmd.Action)
			}
			return
		case ActionCreate:
		default:
			t.Fatalf("unknown action %q accepted", cmd.Action)
		}
		if cmd.Kind != v1alpha1.KindModule {
			t.Fatalf("create of a %s accepted", cmd.Kind)
		}
		dec := yaml.NewDecoder(bytes.NewReader(cmd.Body))
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			t.Fatalf("body does not decode: %v\n%s", err, cmd.Body)
		}
		root := n.Content[0]
		if k := yamlnode.Scalar(yamlnode.Get(root, "kind")); k != cmd.Kind {
			t.Fatalf("body's kind is %q, want %q:\n%s", k, cmd.Kind, cmd.Body)
		}
		if got := yamlnode.Scalar(yamlnode.Get(yamlnode.Get(root, "metadata"), "name")); got != cmd.Name {
			t.Fatalf("body's name is %q, want %q:\n%s", got, cmd.Name, cmd.Body)
		}
		var more yaml.Node
		if err := dec.Decode(&more); err == nil {
			t.Fatalf("body has a second document:\n%s", cmd.Body)
		}
	})
}
