// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

func TestNewOptions(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		opts    Options
		url     string
		tls     bool
		wantErr string
	}{
		"bare host":          {opts: Options{Broker: "broker.lan"}, url: "mqtt://broker.lan:1883"},
		"host and port":      {opts: Options{Broker: "localhost:1884"}, url: "mqtt://localhost:1884"},
		"mqtt URL":           {opts: Options{Broker: "mqtt://10.0.0.1"}, url: "mqtt://10.0.0.1:1883"},
		"mqtts URL":          {opts: Options{Broker: "mqtts://broker.example.net"}, url: "mqtts://broker.example.net:8883", tls: true},
		"tls URL with port":  {opts: Options{Broker: "tls://broker.example.net:9999"}, url: "tls://broker.example.net:9999", tls: true},
		"tls setting":        {opts: Options{Broker: "broker.example.net", TLS: true}, url: "tls://broker.example.net:8883", tls: true},
		"IPv6":               {opts: Options{Broker: "[::1]:1883"}, url: "mqtt://[::1]:1883"},
		"no broker":          {opts: Options{}, wantErr: "broker is required"},
		"websocket":          {opts: Options{Broker: "ws://x"}, wantErr: "unsupported scheme"},
		"no host":            {opts: Options{Broker: "mqtt://:1883"}, wantErr: "no host"},
		"wildcard in prefix": {opts: Options{Broker: "x", TopicPrefix: "a/+"}, wantErr: "topicPrefix"},
		"slash at the end":   {opts: Options{Broker: "x", TopicPrefix: "a/"}, wantErr: "topicPrefix"},
		"missing password":   {opts: Options{Broker: "x", PasswordFile: "/nonexistent/pw"}, wantErr: "passwordFile"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := New(tc.opts, &fakeActions{}, newFakeSource())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := b.server.String(); got != tc.url {
				t.Errorf("URL %s, want %s", got, tc.url)
			}
			if (b.tls != nil) != tc.tls {
				t.Errorf("TLS config %v, want TLS %v", b.tls, tc.tls)
			}
		})
	}
	b, err := New(Options{Broker: "x", Username: "u", PasswordFile: pw}, &fakeActions{}, newFakeSource())
	if err != nil {
		t.Fatal(err)
	}
	if string(b.password) != "s3cret" || b.TopicPrefix() != DefaultTopicPrefix || !strings.HasPrefix(b.opts.ClientID, "reconciled-") {
		t.Errorf("password %q, prefix %q, client ID %q", b.password, b.TopicPrefix(), b.opts.ClientID)
	}
}

func TestBackoff(t *testing.T) {
	b, err := New(Options{Broker: "x", MaxReconnectDelay: 2 * time.Second}, &fakeActions{}, newFakeSource())
	if err != nil {
		t.Fatal(err)
	}
	if d := b.backoff(0); d != 0 {
		t.Errorf("first attempt waits %v", d)
	}
	for n, want := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 4: 2 * time.Second, 100: 2 * time.Second} {
		if d := b.backoff(n); d < want*8/10 || d > want*12/10 {
			t.Errorf("attempt %d waits %v, want %v ±20%%", n, d, want)
		}
	}
}

func TestStatusOf(t *testing.T) {
	m := module("sensor", v1alpha1.ModuleActive, 3)
	m.Generation = 4
	want := Status{Kind: "Module", Name: "sensor", Phase: "Active", Ready: "True", Reason: "Active", Message: "unit is Active", Generation: 4, ObservedGeneration: 3}
	if diff := cmp.Diff(want, StatusOf(m)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	m.Status.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: "False", Reason: v1alpha1.ReasonInvalidSpec, Message: "x.yaml:3: spec.exec: Required value"})
	if got := StatusOf(m); got.Phase != PhaseInvalid || got.Message != "x.yaml:3: spec.exec: Required value" {
		t.Errorf("invalid resource: %+v", got)
	}
	bare := &v1alpha1.Process{TypeMeta: v1alpha1.TypeMeta{Kind: "Process"}, ObjectMeta: v1alpha1.ObjectMeta{Name: "web"}}
	// Not looked at yet: Pending, never an empty phase (issue 11).
	if got := StatusOf(bare); got != (Status{Kind: "Process", Name: "web", Phase: PhasePending, Ready: "Unknown"}) {
		t.Errorf("bare process: %+v", got)
	}
}

// On connecting, the bridge subscribes, says it is online and publishes
// every status, retained; then only changes, and an empty retained
// message when a resource is deleted.
func TestStatusPublication(t *testing.T) {
	h := startHarness(t, module("sensor", "Activating", 1), module("camera", "Active", 2))
	waitfor.Steady(t, 20*time.Millisecond, "nothing published while disconnected", func() bool { return len(h.client.Pubs()) == 0 })
	h.connect(t)

	want := []paho.SubscribeOptions{
		{Topic: "rc/command/#", QoS: 1, RetainHandling: 2},
		{Topic: "rc/status/#", QoS: 1, NoLocal: true},
	}
	if diff := cmp.Diff(want, h.client.Subs()[0]); diff != "" {
		t.Errorf("subscriptions (-want +got)\n%s", diff)
	}
	waitfor.Within(t, wait, "both statuses", func() bool {
		return len(h.client.on("rc/status/module/sensor")) == 1 && len(h.client.on("rc/status/module/camera")) == 1
	})
	online, ok := h.client.last("rc/bridge/state")
	if !ok || online.Payload != "online" || !online.Retain {
		t.Errorf("bridge state %+v, want online, retained", online)
	}
	p, _ := h.client.last("rc/status/module/sensor")
	if !p.Retain || p.QoS != 1 {
		t.Errorf("status published with retain %v, QoS %d", p.Retain, p.QoS)
	}
	st := decodeStatus(t, p.Payload)
	if st.Kind != "Module" || st.Name != "sensor" || st.Phase != "Activating" || st.ObservedGeneration != 1 || st.Time.IsZero() {
		t.Errorf("status %+v", st)
	}
	var raw map[string]any
	json.Unmarshal([]byte(p.Payload), &raw)
	for _, k := range []string{"kind", "name", "phase", "observedGeneration", "message", "time"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status lacks %q: %s", k, p.Payload)
		}
	}

	// A phase change is published; a change that leaves the summary
	// alone is not.
	h.source.put(module("sensor", "Active", 1))
	waitfor.Within(t, wait, "the new phase", func() bool {
		p, _ := h.client.last("rc/status/module/sensor")
		return decodeStatus(t, p.Payload).Phase == "Active"
	})
	same := module("sensor", "Active", 1)
	same.Status.MainPID = 42
	h.source.put(same)
	h.source.put(module("camera", "Failed", 2)) // a marker that the first event was read
	waitfor.Within(t, wait, "the camera's phase", func() bool { return len(h.client.on("rc/status/module/camera")) == 2 })
	if n := len(h.client.on("rc/status/module/sensor")); n != 2 {
		t.Errorf("sensor published %d times, want 2 (a pid change is no phase change)", n)
	}

	h.source.del("Module", "sensor")
	waitfor.Within(t, wait, "the retained status to be cleared", func() bool {
		p, _ := h.client.last("rc/status/module/sensor")
		return p.Payload == "" && p.Retain
	})
}

// While the connection is down, changes wait (the newest per resource);
// on reconnection the bridge subscribes again and publishes everything.
func TestReconnectRepublishes(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1), module("camera", "Active", 1))
	h.connect(t)
	waitfor.Within(t, wait, "the statuses", func() bool { return len(h.client.on("rc/status/module/camera")) == 1 })

	h.client.setDown(true)
	h.b.out.disconnected()
	h.source.put(module("sensor", "Deactivating", 1))
	h.source.put(module("sensor", "Inactive", 1))
	h.source.del("Module", "camera")
	h.command("rc/command/module/nosuch/start", "") // its error report waits too
	waitfor.Within(t, wait, "the changes and the refusal to wait", func() bool {
		phase, _ := published(h.b, "sensor")
		_, camera := published(h.b, "camera")
		h.b.out.mu.Lock()
		defer h.b.out.mu.Unlock()
		return phase == "Inactive" && !camera && len(h.b.out.msgs) == 1
	})
	n := len(h.client.Pubs())
	h.connect(t)
	waitfor.Within(t, wait, "the statuses again", func() bool {
		p, _ := h.client.last("rc/status/module/sensor")
		c, _ := h.client.last("rc/status/module/camera")
		return decodeStatus(t, p.Payload).Phase == "Inactive" && c.Payload == "" && len(h.client.on("rc/error")) == 1
	})
	var phases []string
	for _, p := range h.client.Pubs()[n:] {
		if p.Topic == "rc/status/module/sensor" {
			phases = append(phases, decodeStatus(t, p.Payload).Phase)
		}
	}
	if diff := cmp.Diff([]string{"Inactive"}, phases); diff != "" {
		t.Errorf("sensor phases published after reconnecting (-want +got)\n%s", diff)
	}
	if len(h.client.Subs()) != 2 {
		t.Errorf("subscribed %d times, want 2", len(h.client.Subs()))
	}
}

// A watch that falls behind is closed by the store: the bridge lists again,
// publishing what changed and clearing what is gone.
func TestWatchFellBehind(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1), module("camera", "Active", 1))
	h.connect(t)
	waitfor.Within(t, wait, "the statuses", func() bool { return len(h.client.on("rc/status/module/camera")) == 1 })
	h.source.dropWatchers(func(objs map[resources.Key]v1alpha1.Object) {
		delete(objs, resources.Key{Kind: "Module", Name: "camera"})
		objs[resources.Key{Kind: "Module", Name: "sensor"}] = module("sensor", "Failed", 1)
	})
	waitfor.Within(t, wait, "the relist", func() bool {
		p, _ := h.client.last("rc/status/module/sensor")
		c, _ := h.client.last("rc/status/module/camera")
		return decodeStatus(t, p.Payload).Phase == "Failed" && c.Payload == ""
	})
	if h.source.Watches() != 2 {
		t.Errorf("watched %d times, want 2", h.source.Watches())
	}
	h.source.put(module("sensor", "Active", 1))
	waitfor.Within(t, wait, "a change through the new watch", func() bool {
		p, _ := h.client.last("rc/status/module/sensor")
		return decodeStatus(t, p.Payload).Phase == "Active"
	})
}

// Retained statuses the broker holds for resources that are gone (deleted
// while the daemon was down) are cleared; those of live resources are not.
func TestStaleRetainedStatusesCleared(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1))
	h.connect(t)
	waitfor.Within(t, wait, "the status", func() bool { return len(h.client.on("rc/status/module/sensor")) == 1 })
	for _, p := range []*paho.Publish{
		{Topic: "rc/status/module/gone", Payload: []byte(`{"phase":"Active"}`), Retain: true},
		{Topic: "rc/status/module/sensor", Payload: []byte(`{"phase":"Active"}`), Retain: true},
		{Topic: "rc/status/module/live", Payload: []byte(`{"phase":"Active"}`)},  // not retained: someone else's
		{Topic: "rc/status/modules/plural", Payload: []byte(`{}`), Retain: true}, // not a topic of ours
		{Topic: "rc/status/module", Payload: []byte(`{}`), Retain: true},
	} {
		h.b.receive(p)
	}
	waitfor.Within(t, wait, "the stale status to be cleared", func() bool {
		p, ok := h.client.last("rc/status/module/gone")
		return ok && p.Payload == "" && p.Retain
	})
	for _, topic := range []string{"rc/status/module/live", "rc/status/modules/plural", "rc/status/module"} {
		if len(h.client.on(topic)) != 0 {
			t.Errorf("published on %s", topic)
		}
	}
	if n := len(h.client.on("rc/status/module/sensor")); n != 1 {
		t.Errorf("sensor's status published %d times, want 1", n)
	}
}

func TestCommands(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1), &v1alpha1.Process{TypeMeta: v1alpha1.TypeMeta{Kind: "Process"}, ObjectMeta: v1alpha1.ObjectMeta{Name: "web"}})
	h.connect(t)
	h.command("rc/command/module/sensor/stop", "")
	h.command("rc/command/mod/sensor/start", `{"config_id":"123"}`)
	h.command("rc/command/processes/web/restart", "")
	h.command("rc/command/module/camera/create", `{"exec": ["/bin/cam"]}`)
	h.command("rc/command/module/sensor/remove", "")
	want := []call{
		{"SetState", "Module", "sensor", "Stopped"},
		{"SetState", "Module", "sensor", "Running"},
		{"Restart", "Process", "web", ""},
		{"Apply", "Module", "camera", "apiVersion: reconciled.dev/v1alpha1\nkind: Module\nmetadata:\n  name: camera\nspec:\n  exec: [/bin/cam]\n"},
		{"Delete", "Module", "sensor", ""},
	}
	waitfor.Within(t, wait, "the five commands", func() bool { return len(h.actions.Calls()) == len(want) })
	if diff := cmp.Diff(want, h.actions.Calls()); diff != "" {
		t.Errorf("calls (-want +got)\n%s", diff)
	}
	if errs := h.client.on("rc/error"); len(errs) != 0 {
		t.Errorf("errors published: %v", errs)
	}
}

// A malformed or refused command changes nothing and gets an error report
// on <prefix>/error.
func TestCommandErrors(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1))
	h.connect(t)
	for name, tc := range map[string]struct {
		topic, payload string
		actionErr      error
		want           ErrorReport // Time is not compared
	}{
		"wrong shape":      {topic: "rc/command/module/sensor", want: ErrorReport{Topic: "rc/command/module/sensor", Error: "topic \"rc/command/module/sensor\" has 2 levels after rc/command/, want 3: <kind>/<name>/<action>"}},
		"unknown kind":     {topic: "rc/command/gizmo/x/start", want: ErrorReport{Topic: "rc/command/gizmo/x/start", Error: `unknown kind "gizmo" (want one of alertroute, check, host, link, module, pinode, process)`}},
		"unknown action":   {topic: "rc/command/module/sensor/pause", want: ErrorReport{Topic: "rc/command/module/sensor/pause", Error: `unknown action "pause" (want start, stop, restart, create or remove)`}},
		"bad payload":      {topic: "rc/command/module/x/create", payload: "[1, 2]", want: ErrorReport{Topic: "rc/command/module/x/create", Error: "payload must be a JSON object or YAML mapping"}},
		"unknown resource": {topic: "rc/command/module/nosuch/restart", want: ErrorReport{Topic: "rc/command/module/nosuch/restart", Error: `module "nosuch" not found`, Kind: "Module", Name: "nosuch", Action: ActionRestart}},
		"refused":          {topic: "rc/command/module/sensor/stop", actionErr: errors.New(`module "sensor" is invalid: spec.state: Unsupported value`), want: ErrorReport{Topic: "rc/command/module/sensor/stop", Error: `module "sensor" is invalid: spec.state: Unsupported value`, Kind: "Module", Name: "sensor", Action: ActionStop}},
	} {
		t.Run(name, func(t *testing.T) {
			h.actions.mu.Lock()
			h.actions.err, h.actions.calls = tc.actionErr, nil
			h.actions.mu.Unlock()
			n := len(h.client.on("rc/error"))
			h.command(tc.topic, tc.payload)
			waitfor.Within(t, wait, "the error report", func() bool { return len(h.client.on("rc/error")) == n+1 })
			p, _ := h.client.last("rc/error")
			var got ErrorReport
			if err := json.Unmarshal([]byte(p.Payload), &got); err != nil {
				t.Fatal(err)
			}
			if got.Time.IsZero() || p.Retain || p.QoS != 1 {
				t.Errorf("report %s: time %v, retain %v, QoS %d", p.Payload, got.Time, p.Retain, p.QoS)
			}
			got.Time = time.Time{}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("report (-want +got)\n%s", diff)
			}
			var raw map[string]any
			json.Unmarshal([]byte(p.Payload), &raw)
			for _, k := range []string{"topic", "error", "time"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("report lacks %q: %s", k, p.Payload)
				}
			}
			calls := h.actions.Calls()
			if tc.actionErr == nil && len(calls) != 0 {
				t.Errorf("a malformed command reached the actions: %v", calls)
			}
		})
	}
}

// A command with an MQTT v5 response topic gets a reply there, with its
// correlation data.
func TestCommandReply(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1))
	h.connect(t)
	for _, topic := range []string{"rc/command/module/sensor/stop", "rc/command/module/nosuch/stop"} {
		h.b.receive(&paho.Publish{Topic: topic, QoS: 1, Properties: &paho.PublishProperties{ResponseTopic: "me/replies", CorrelationData: []byte(topic)}})
	}
	waitfor.Within(t, wait, "two replies", func() bool { return len(h.client.on("me/replies")) == 2 })
	for i, want := range []Reply{
		{Topic: "rc/command/module/sensor/stop", Kind: "Module", Name: "sensor", Action: ActionStop, Result: "accepted"},
		{Topic: "rc/command/module/nosuch/stop", Kind: "Module", Name: "nosuch", Action: ActionStop, Error: `module "nosuch" not found`},
	} {
		p := h.client.on("me/replies")[i]
		var got Reply
		if err := json.Unmarshal([]byte(p.Payload), &got); err != nil {
			t.Fatal(err)
		}
		got.Time = time.Time{}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("reply %d (-want +got)\n%s", i, diff)
		}
		if p.Props == nil || string(p.Props.CorrelationData) != want.Topic {
			t.Errorf("reply %d: properties %+v, want the correlation data back", i, p.Props)
		}
	}
}

// <kind>/all/restart answers once, with what was restarted and what
// failed: on the response topic, or without one on <prefix>/reply. It
// does not hold up the commands after it.
func TestRestartAllReply(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1))
	h.actions.restartAll = []string{"bad", "sensor"}
	h.connect(t)
	h.command("rc/command/module/all/restart", `{"selector": "site=ark"}`)
	h.b.receive(&paho.Publish{Topic: "rc/command/module/all/restart", QoS: 1, Properties: &paho.PublishProperties{ResponseTopic: "me/replies", CorrelationData: []byte("x")}})
	waitfor.Within(t, wait, "an answer on rc/reply", func() bool { return len(h.client.on("rc/reply")) == 1 })
	var got Reply
	p, _ := h.client.last("rc/reply")
	if err := json.Unmarshal([]byte(p.Payload), &got); err != nil {
		t.Fatal(err)
	}
	got.Time = time.Time{}
	want := Reply{Topic: "rc/command/module/all/restart", Kind: "Module", Name: "all", Action: ActionRestart, Result: "failed",
		Report: &v1alpha1.RestartReport{Restarted: []string{"sensor"}, Failed: []v1alpha1.RestartFailure{{Name: "bad", Error: "bad.service is failed after the restart (result exit-code)"}}, Skipped: []v1alpha1.RestartFailure{}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reply (-want +got)\n%s", diff)
	}
	if p.Retain {
		t.Error("the answer is retained")
	}
	// The second one asked while the first ran (refused) or after it
	// (answered): either way exactly one answer on its response topic.
	waitfor.Within(t, wait, "an answer on the response topic", func() bool { return len(h.client.on("me/replies")) == 1 })
	if c := h.actions.Calls(); len(c) == 0 || c[0] != (call{"RestartAll", "Module", "site=ark", "1m0s"}) {
		t.Errorf("calls %v", c)
	}
}

// A publication the broker refuses is dropped (retrying would hold up
// everything behind it); the rest goes on.
func TestRefusedPublicationDropped(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1))
	h.client.refuse = map[string]bool{"forbidden/replies": true}
	h.connect(t)
	h.b.receive(&paho.Publish{Topic: "rc/command/module/sensor/stop", QoS: 1, Properties: &paho.PublishProperties{ResponseTopic: "forbidden/replies"}})
	h.command("rc/command/module/x/explode", "")
	waitfor.Within(t, wait, "the error report behind the refused reply", func() bool { return len(h.client.on("rc/error")) == 1 })
	// Dropped, not retried: a refusal is permanent (issue 12).
	waitfor.Steady(t, 200*time.Millisecond, "the refused reply tried once", func() bool { return h.client.attempts("forbidden/replies") == 1 })
}

// A broker that refuses the subscriptions (an ACL) still gets the statuses.
func TestRefusedSubscription(t *testing.T) {
	h := startHarness(t, module("sensor", "Active", 1))
	h.client.noSubs = true
	h.connect(t)
	waitfor.Within(t, wait, "the status", func() bool { return len(h.client.on("rc/status/module/sensor")) == 1 })
	waitfor.Steady(t, 20*time.Millisecond, "no second subscription", func() bool { return len(h.client.Subs()) == 1 })
}

// Commands beyond the bounded queue are refused, not queued without end.
func TestCommandQueueBounded(t *testing.T) {
	b, err := New(Options{Broker: "x", TopicPrefix: "rc", Log: logr.Discard()}, &fakeActions{}, newFakeSource())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing executes commands: the queue fills.
	for range maxInbound + 3 {
		b.receive(&paho.Publish{Topic: "rc/command/module/sensor/stop"})
	}
	if len(b.cmds) != maxInbound || len(b.out.msgs) != 3 || !strings.Contains(string(b.out.msgs[0].payload), "too many commands waiting") {
		t.Errorf("queued %d commands and %d reports: %v", len(b.cmds), len(b.out.msgs), b.out.msgs)
	}
	for range 2 * maxMessages {
		b.report(inbound{topic: "t"}, Command{}, "", errors.New("x"))
	}
	if len(b.out.msgs) != maxMessages {
		t.Errorf("%d reports waiting, want at most %d", len(b.out.msgs), maxMessages)
	}
}
