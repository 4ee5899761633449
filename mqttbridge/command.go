// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/yamlnode"
	"github.com/reconciled/reconciled/resources/apply"
)

// Action is what a command asks for: the last level of its topic.
type Action string

// Actions a command may ask for. Topics spell them in lower case (any case
// is accepted).
const (
	// ActionCreate creates or replaces a Module from the payload.
	ActionCreate Action = "create"
	// ActionRemove deletes a Module that was created through the API or MQTT.
	ActionRemove Action = "remove"
	// ActionStart sets spec.state to Running.
	ActionStart Action = "start"
	// ActionStop sets spec.state to Stopped.
	ActionStop Action = "stop"
	// ActionRestart restarts the resource's program now.
	ActionRestart Action = "restart"
)

// MaxPayload is the largest command payload accepted (that of apply.MaxBody).
const MaxPayload = apply.MaxBody

// Command is one decoded command.
type Command struct {
	// Kind is the CamelCase kind ("Module"), whatever spelling the topic used.
	Kind string
	// Name is the resource's name, a DNS-1123 label.
	Name string
	// Action is what to do.
	Action Action
	// Body is, for ActionCreate only, the single resource document to apply
	// (YAML or JSON); its kind and metadata.name are Kind and Name. It is
	// nil for the other actions.
	Body []byte
	// All is set for <kind>/all/restart: restart every resource of Kind
	// (that Selector matches), and answer with what was restarted and what
	// failed. Name is then "all".
	All bool
	// Selector is, with All, the label selector of the payload's
	// "selector" ("" matches every resource).
	Selector string
	// Timeout is, with All, how long to wait for the outcomes (the
	// payload's "timeout"; default DefaultRestartAllTimeout).
	Timeout time.Duration
}

// AllName is the name that, with the restart action, means every resource
// of the kind: <prefix>/command/module/all/restart (the seed's
// restart_configs). A resource actually named "all" is restarted with the
// others.
const AllName = "all"

// DefaultRestartAllTimeout bounds the wait for the outcomes of a restart
// of every resource, unless the payload says otherwise.
const DefaultRestartAllTimeout = time.Minute

// maxRestartAllTimeout bounds the payload's timeout.
const maxRestartAllTimeout = 10 * time.Minute

// ParseCommand decodes the command published on topic with payload, for a
// bridge whose topic prefix is prefix. It is a pure function.
//
// The topic must be <prefix>/command/<kind>/<name>/<action>, where kind is
// any spelling v1alpha1.LookupKind accepts (module, modules, mod, Module,
// process, ...), name a DNS-1123 label, and action one of start, stop,
// restart, and for modules create and remove.
//
// The payload of start, stop, restart and remove is ignored. The payload
// of create is one YAML or JSON mapping, either
//   - a whole resource: a mapping with a "kind" or "apiVersion" key, used
//     as it is; its kind and metadata.name must be those of the topic; or
//   - just the spec (any other mapping, as the seed's users send it): it is
//     wrapped into {apiVersion: reconciled.dev/v1alpha1, kind: Module,
//     metadata: {name: <name>}, spec: <payload>}.
//
// Validation of the resource itself is left to whoever applies Body.
func ParseCommand(prefix, topic string, payload []byte) (Command, error) {
	rest, ok := strings.CutPrefix(topic, prefix+"/command/")
	if !ok {
		return Command{}, fmt.Errorf("topic %q is not under %s/command/", topic, prefix)
	}
	levels := strings.Split(rest, "/")
	if len(levels) != 3 {
		return Command{}, fmt.Errorf("topic %q has %d levels after %s/command/, want 3: <kind>/<name>/<action>", topic, len(levels), prefix)
	}
	ki, ok := v1alpha1.LookupKind(levels[0])
	if !ok {
		return Command{}, fmt.Errorf("unknown kind %q (want one of %s)", levels[0], strings.ToLower(strings.Join(v1alpha1.KindNames(), ", ")))
	}
	name := levels[1]
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return Command{}, fmt.Errorf("invalid name %q: %s", name, strings.Join(msgs, "; "))
	}
	cmd := Command{Kind: ki.Kind, Name: name, Action: Action(strings.ToLower(levels[2]))}
	switch cmd.Action {
	case ActionRestart:
		if name == AllName {
			return restartAll(cmd, payload)
		}
		return cmd, nil
	case ActionStart, ActionStop:
		return cmd, nil
	case ActionCreate, ActionRemove:
		if ki.Kind != v1alpha1.KindModule {
			return Command{}, fmt.Errorf("action %q is for modules only (%s are created and removed in their files)", cmd.Action, ki.Plural)
		}
	default:
		return Command{}, fmt.Errorf("unknown action %q (want start, stop, restart, create or remove)", levels[2])
	}
	if cmd.Action == ActionRemove {
		return cmd, nil
	}
	body, err := createBody(ki, name, payload)
	if err != nil {
		return Command{}, err
	}
	cmd.Body = body
	return cmd, nil
}

// restartAll reads the optional payload of <kind>/all/restart: empty, or
// a JSON object {"selector": "app=sensor", "timeout": "30s"}.
func restartAll(cmd Command, payload []byte) (Command, error) {
	cmd.All, cmd.Timeout = true, DefaultRestartAllTimeout
	if len(payload) > MaxPayload {
		return Command{}, fmt.Errorf("payload larger than %d bytes", MaxPayload)
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return cmd, nil
	}
	var opts struct {
		Selector string `json:"selector"`
		Timeout  string `json:"timeout"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&opts); err != nil {
		return Command{}, fmt.Errorf("restart of every %s: payload must be empty or {\"selector\": \"...\", \"timeout\": \"30s\"}: %v", strings.ToLower(cmd.Kind), err)
	}
	if _, err := labels.Parse(opts.Selector); err != nil {
		return Command{}, fmt.Errorf("selector %q: %v", opts.Selector, err)
	}
	cmd.Selector = opts.Selector
	if opts.Timeout != "" {
		d, err := time.ParseDuration(opts.Timeout)
		if err != nil || d <= 0 || d > maxRestartAllTimeout {
			return Command{}, fmt.Errorf("timeout %q: want a duration such as \"30s\", at most %s", opts.Timeout, maxRestartAllTimeout)
		}
		cmd.Timeout = d
	}
	return cmd, nil
}

// createBody turns the payload of a create command into the resource
// document to apply; see ParseCommand.
func createBody(ki v1alpha1.KindInfo, name string, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("payload larger than %d bytes", MaxPayload)
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, fmt.Errorf("create needs a payload: the %s resource, or just its spec, as JSON or YAML", ki.Kind)
	}
	dec := yaml.NewDecoder(bytes.NewReader(payload))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("payload is not JSON or YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		docs = append(docs, &n)
	}
	if len(docs) != 1 || len(docs[0].Content) == 0 {
		return nil, fmt.Errorf("payload must be one JSON or YAML document, got %d", len(docs))
	}
	root := docs[0].Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("payload must be a JSON object or YAML mapping")
	}
	if yamlnode.Get(root, "kind") != nil || yamlnode.Get(root, "apiVersion") != nil {
		// A whole resource: check it is the one the topic names.
		kind := yamlnode.Scalar(yamlnode.Get(root, "kind"))
		if kind != ki.Kind {
			return nil, fmt.Errorf("the payload is a %q, the topic is for a %s", kind, ki.Kind)
		}
		if got := yamlnode.Scalar(yamlnode.Get(yamlnode.Get(root, "metadata"), "name")); got != name {
			return nil, fmt.Errorf("the payload is named %q, the topic is for %q", got, name)
		}
		return payload, nil
	}
	// Just the spec: wrap it. JSON's flow style becomes block style, as
	// apply does for JSON documents.
	yamlnode.Plain(root)
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		str("apiVersion"), str(v1alpha1.APIVersion),
		str("kind"), str(ki.Kind),
		str("metadata"), {Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str("name"), str(name)}},
		str("spec"), root,
	}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("cannot re-encode the payload: %w", err)
	}
	return b.Bytes(), nil
}
