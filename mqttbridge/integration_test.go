// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/mqtttest"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// runBridge runs b until the test ends, or until the returned stop is
// called; stop waits for Run to return.
func runBridge(t *testing.T, b *Bridge) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("Run did not return within %v of its context being cancelled", wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// recorder is a plain paho client that records what it receives.
type recorder struct {
	mu   sync.Mutex
	msgs []pub
	cli  *paho.Client
}

// subscribe connects a recorder to the broker and returns once the broker
// has acknowledged its subscriptions.
func subscribe(t *testing.T, broker *mqtttest.Broker, topics ...string) *recorder {
	t.Helper()
	conn, err := net.DialTimeout("tcp", broker.Addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	id := fmt.Sprintf("test-%d", time.Now().UnixNano())
	r.cli = paho.NewClient(paho.ClientConfig{Conn: conn, ClientID: id,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			p := pr.Packet
			r.msgs = append(r.msgs, pub{Topic: p.Topic, Payload: string(p.Payload), Retain: p.Retain, QoS: p.QoS})
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := r.cli.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
		UsernameFlag: true, Username: broker.Username, PasswordFlag: true, Password: []byte(broker.Password)}); err != nil {
		t.Fatalf("test client connect: %v", err)
	}
	t.Cleanup(func() { r.cli.Disconnect(&paho.Disconnect{}) })
	sub := &paho.Subscribe{}
	for _, topic := range topics {
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: topic, QoS: 1})
	}
	if _, err := r.cli.Subscribe(ctx, sub); err != nil {
		t.Fatalf("test client subscribe: %v", err)
	}
	return r
}

func (r *recorder) Msgs() []pub {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) on(topic string) []pub {
	var out []pub
	for _, m := range r.Msgs() {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// retained returns the retained messages the broker holds under
// <prefix>/status/#, read by a new subscriber: what the broker sends at
// subscription, up to a marker published after it.
func retained(t *testing.T, broker *mqtttest.Broker, prefix string) map[string]string {
	t.Helper()
	marker := prefix + "/test-marker"
	r := subscribe(t, broker, prefix+"/status/#", marker)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := r.cli.Publish(ctx, &paho.Publish{Topic: marker, QoS: 1, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitfor.Within(t, wait, "the marker", func() bool { return len(r.on(marker)) == 1 })
	out := map[string]string{}
	for _, m := range r.Msgs() {
		if m.Topic != marker {
			if !m.Retain {
				t.Errorf("message on %s not retained", m.Topic)
			}
			out[m.Topic] = m.Payload
		}
	}
	return out
}

// mosquitto runs one of the mosquitto command-line clients.
func mosquitto(t *testing.T, broker *mqtttest.Broker, client string, args ...string) string {
	t.Helper()
	out, err := exec.Command(client, append(broker.ClientArgs(), args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", client, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func needClients(t *testing.T) {
	for _, c := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("MQTTTEST_REQUIRE") == "1" {
				t.Fatalf("%s is not installed (MQTTTEST_REQUIRE=1)", c)
			}
			fixtures.SkipOrFail(t, fmt.Sprintf("%s is not installed (make test installs mosquitto-clients)", c))
		}
	}
}

// The bridge against a real mosquitto with password authentication:
// commands published by mosquitto_pub reach the actions, statuses are
// retained for subscribers that come later, malformed commands are
// reported on <prefix>/error, and after the broker restarts the bridge
// reconnects by itself, publishes its statuses again and takes commands.
func TestWithMosquitto(t *testing.T) {
	broker := mqtttest.Start(t)
	needClients(t)
	actions := &fakeActions{}
	source := newFakeSource(module("sensor", "Active", 1), module("camera", "Activating", 1))
	b, err := New(Options{Broker: broker.URL(), Username: broker.Username, PasswordFile: broker.PasswordFile,
		TopicPrefix: "it", MaxReconnectDelay: 500 * time.Millisecond, Log: testr.New(t)}, actions, source)
	if err != nil {
		t.Fatal(err)
	}
	runBridge(t, b)
	waitfor.Within(t, wait, "the bridge to connect and publish", func() bool { return settled(b) })

	// A subscriber that comes after the publication sees the status.
	var st Status
	if err := json.Unmarshal([]byte(mosquitto(t, broker, "mosquitto_sub", "-t", "it/status/module/sensor", "-C", "1", "-W", "10")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Kind != "Module" || st.Name != "sensor" || st.Phase != "Active" || st.ObservedGeneration != 1 {
		t.Errorf("retained status %+v", st)
	}
	if got := mosquitto(t, broker, "mosquitto_sub", "-t", "it/bridge/state", "-C", "1", "-W", "10"); got != "online" {
		t.Errorf("bridge state %q, want online", got)
	}

	// A command from another client.
	mosquitto(t, broker, "mosquitto_pub", "-q", "1", "-t", "it/command/mod/sensor/stop", "-n")
	waitfor.Within(t, wait, "the stop command", func() bool {
		return slices.Contains(actions.Calls(), call{"SetState", "Module", "sensor", "Stopped"})
	})

	// A status change, then a deletion.
	source.put(module("sensor", "Inactive", 1))
	source.del("Module", "camera")
	waitfor.Within(t, wait, "the bridge to publish the changes", func() bool {
		phase, _ := published(b, "sensor")
		_, camera := published(b, "camera")
		return phase == "Inactive" && !camera && settled(b)
	})
	statuses := retained(t, broker, "it")
	if _, ok := statuses["it/status/module/camera"]; ok || len(statuses) != 1 {
		t.Errorf("retained statuses %v, want only the sensor's", statuses)
	}
	if st := decodeStatus(t, statuses["it/status/module/sensor"]); st.Phase != "Inactive" {
		t.Errorf("retained sensor status %+v, want Inactive", st)
	}

	// A malformed command is reported and changes nothing.
	errs := subscribe(t, broker, "it/error")
	n := len(actions.Calls())
	mosquitto(t, broker, "mosquitto_pub", "-q", "1", "-t", "it/command/gizmo/sensor/start", "-m", "{}")
	waitfor.Within(t, wait, "the error report", func() bool { return len(errs.on("it/error")) == 1 })
	var rep ErrorReport
	if err := json.Unmarshal([]byte(errs.on("it/error")[0].Payload), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Topic != "it/command/gizmo/sensor/start" || !strings.Contains(rep.Error, `unknown kind "gizmo"`) || rep.Time.IsZero() {
		t.Errorf("error report %+v", rep)
	}
	if len(actions.Calls()) != n {
		t.Errorf("the malformed command reached the actions: %v", actions.Calls()[n:])
	}

	// The broker goes away and comes back (empty: no persistence).
	broker.Stop()
	waitfor.Within(t, wait, "the bridge to notice", func() bool { up, _, _ := b.out.state(); return !up })
	source.put(module("sensor", "Active", 2)) // while disconnected
	broker.Restart()
	waitfor.Within(t, wait, "the bridge to reconnect by itself", func() bool {
		b.out.mu.Lock()
		gen := b.out.statuses[resources.Key{Kind: "Module", Name: "sensor"}].st.ObservedGeneration
		b.out.mu.Unlock()
		return gen == 2 && settled(b)
	})
	statuses = retained(t, broker, "it")
	if st := decodeStatus(t, statuses["it/status/module/sensor"]); st.Phase != "Active" || st.ObservedGeneration != 2 || len(statuses) != 1 {
		t.Errorf("retained statuses after the broker restarted: %v", statuses)
	}
	mosquitto(t, broker, "mosquitto_pub", "-q", "1", "-t", "it/command/module/sensor/restart", "-n")
	waitfor.Within(t, wait, "a command after reconnecting", func() bool {
		return slices.Contains(actions.Calls(), call{"Restart", "Module", "sensor", ""})
	})
}

// A command published retained is not executed when the bridge (re)subscribes.
func TestRetainedCommandIgnored(t *testing.T) {
	broker := mqtttest.Start(t)
	needClients(t)
	mosquitto(t, broker, "mosquitto_pub", "-q", "1", "-r", "-t", "it/command/module/sensor/stop", "-m", "{}") // a null message would not be retained
	actions := &fakeActions{}
	b, err := New(Options{Broker: broker.URL(), Username: broker.Username, PasswordFile: broker.PasswordFile,
		TopicPrefix: "it", Log: testr.New(t)}, actions, newFakeSource(module("sensor", "Active", 1)))
	if err != nil {
		t.Fatal(err)
	}
	stop := runBridge(t, b)
	waitfor.Within(t, wait, "the bridge to connect", func() bool { return settled(b) })
	mosquitto(t, broker, "mosquitto_pub", "-q", "1", "-t", "it/command/module/sensor/start", "-n")
	waitfor.Within(t, wait, "the start command", func() bool { return len(actions.Calls()) > 0 })
	// Had the retained stop been delivered, it would have run first.
	if diff := cmp.Diff([]call{{"SetState", "Module", "sensor", "Running"}}, actions.Calls()); diff != "" {
		t.Errorf("calls (-want +got); the retained stop must not run\n%s", diff)
	}

	// A bridge that stops says so.
	stop()
	if got := mosquitto(t, broker, "mosquitto_sub", "-t", "it/bridge/state", "-C", "1", "-W", "10"); got != "offline" {
		t.Errorf("bridge state %q after Run returned, want offline", got)
	}
}

// A wrong password: the bridge keeps trying and never acts.
func TestWrongPassword(t *testing.T) {
	broker := mqtttest.Start(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Broker: broker.URL(), Username: broker.Username, PasswordFile: pw, TopicPrefix: "it",
		MaxReconnectDelay: 100 * time.Millisecond, Log: testr.New(t)}, &fakeActions{}, newFakeSource())
	if err != nil {
		t.Fatal(err)
	}
	runBridge(t, b)
	waitfor.Within(t, wait, "a refused connection attempt", func() bool { return b.failing.Load() })
	if up, _, _ := b.out.state(); up {
		t.Error("connected with a wrong password")
	}
}
