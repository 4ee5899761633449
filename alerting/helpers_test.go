// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/alerting/receivers"
	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// fakeRecv is a receiver that records what it accepted and fails on
// demand.
type fakeRecv struct {
	name string

	mu         sync.Mutex
	got        []receivers.Notification // accepted
	attempts   []time.Time
	attemptIDs []string
	failN      int // fail this many more attempts; negative: always
	block      chan struct{}
	rejectN    int // next rejectN sends fail permanently
}

func (f *fakeRecv) Name() string { return f.name }

func (f *fakeRecv) Send(ctx context.Context, n receivers.Notification) error {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	f.attemptIDs = append(f.attemptIDs, n.ID)
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rejectN > 0 {
		f.rejectN--
		return &receivers.PermanentError{Err: errors.New("post to http://127.0.0.1: 400 Bad Request")}
	}
	if f.failN != 0 {
		if f.failN > 0 {
			f.failN--
		}
		return errors.New("dial tcp 127.0.0.1:25: connect: connection refused")
	}
	f.got = append(f.got, n)
	return nil
}

func (f *fakeRecv) setFail(n int) {
	f.mu.Lock()
	f.failN = n
	f.mu.Unlock()
}

func (f *fakeRecv) notifications() []receivers.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]receivers.Notification(nil), f.got...)
}

func (f *fakeRecv) count() int { return len(f.notifications()) }

func (f *fakeRecv) attemptLog() ([]time.Time, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts...), append([]string(nil), f.attemptIDs...)
}

// fakes hands out fake receivers by webhook URL, so that a receiver
// outlives a Manager (restart tests). URLs starting with "bad:" fail to
// build.
type fakes struct {
	mu sync.Mutex
	m  map[string]*fakeRecv
}

func newFakes() *fakes { return &fakes{m: map[string]*fakeRecv{}} }

func (fs *fakes) get(url string) *fakeRecv {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[url]
	if f == nil {
		f = &fakeRecv{name: "fake:" + url}
		fs.m[url] = f
	}
	return f
}

func (fs *fakes) newReceiver(spec v1alpha1.Receiver, index int) (receivers.Receiver, error) {
	if spec.Alertmanager != nil {
		return fs.get(spec.Alertmanager.URL), nil
	}
	if spec.Webhook == nil {
		return nil, errors.New("fake: only webhook specs")
	}
	if strings.HasPrefix(spec.Webhook.URL, "bad:") {
		return nil, errors.New("fake: cannot build")
	}
	return fs.get(spec.Webhook.URL), nil
}

// routeSpec is a route matching every alert with fake receivers at urls.
func routeSpec(groupWait, repeat time.Duration, sendResolved bool, urls ...string) v1alpha1.AlertRouteSpec {
	s := v1alpha1.AlertRouteSpec{
		GroupWait:      &metav1.Duration{Duration: groupWait},
		RepeatInterval: &metav1.Duration{Duration: repeat},
		SendResolved:   &sendResolved,
	}
	for _, u := range urls {
		s.Receivers = append(s.Receivers, v1alpha1.Receiver{Webhook: &v1alpha1.WebhookReceiver{URL: u}})
	}
	return s
}

func newAlert(kind, object, name string) receivers.Alert {
	return receivers.Alert{
		Name:        name,
		Kind:        kind,
		Object:      object,
		Severity:    v1alpha1.SeverityWarning,
		Labels:      map[string]string{"kind": kind, "name": object, "severity": v1alpha1.SeverityWarning, "site": "hecnet"},
		Summary:     kind + " " + object + " is " + name,
		StartsAt:    time.Now(),
		Fingerprint: receivers.Fingerprint(name, kind, object),
	}
}

func resolve(a receivers.Alert) receivers.Alert {
	a.EndsAt = time.Now()
	return a
}

// testOptions are options with fast retries and the fakes.
func testOptions(fs *fakes, dir string) Options {
	return Options{
		StateDir:    dir,
		Hostname:    "testhost",
		NewReceiver: fs.newReceiver,
		RetryBase:   5 * time.Millisecond,
		RetryMax:    200 * time.Millisecond,
	}
}

// start creates a Manager and runs it until the returned stop (also a
// cleanup) is called. stop does not close the state files, like kill -9.
func start(t *testing.T, o Options) (*Manager, func()) {
	t.Helper()
	m, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, run(t, m)
}

func run(t *testing.T, m *Manager) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Start(ctx)
		close(done)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

const waitTimeout = 15 * time.Second

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, waitTimeout, what, cond)
}

// consistently checks that cond holds throughout d.
func consistently(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waitfor.Steady(t, d, what, cond)
}

func (m *Manager) groupCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.groups)
}

func (m *Manager) outboxLen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outbox)
}

func mustStatus(t *testing.T, m *Manager, route string) RouteStatus {
	t.Helper()
	s, ok := m.Status(route)
	if !ok {
		t.Fatalf("no status for route %s", route)
	}
	return s
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
