// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// drainTimeout bounds the wait for the outbox to drain once the receivers
// are back: a receiver's first pending delivery is retried with a backoff
// of 1s, 2s, 4s, ... (jittered), so its next attempt may come later than
// waitTimeout after the flaps began.
const drainTimeout = 2 * time.Minute

// amReceived sums Alertmanager's alertmanager_alerts_received_total over
// the series with status="status" (whatever their other labels, e.g.
// version="v1"/"v2").
func amReceived(t *testing.T, base, status string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(fetchMetrics(t, base), "\n") {
		rest, ok := strings.CutPrefix(line, "alertmanager_alerts_received_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(","+labels+",", `,status="`+status+`",`) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("alertmanager metric %q: %v", line, err)
		}
		n += int(v)
	}
	return n
}

// receiversFailing counts the receivers of r whose last attempt failed
// (conditions Receiver0, Receiver1, ... False).
func receiversFailing(r alertRoute) int {
	n := 0
	for _, c := range r.Status.Conditions {
		if strings.HasPrefix(c.Type, "Receiver") && c.Status == "False" {
			n++
		}
	}
	return n
}

// Every network receiver kind (email through a real SMTP server with
// STARTTLS and AUTH, webhook, and a real Alertmanager) is down while a link
// goes down and up twice; then they all come back: every notification
// arrives at every receiver, in order, and none twice.
func TestReceiversDownThenBack(t *testing.T) {
	amBin := alertmanagerBin(t)
	s := newSink(t, "alerts@example.net", "s3cret") // its address, not served yet
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	writeFile(t, pwFile, "s3cret\n")
	hook, amPort := freePort(t), freePort(t)
	amBase := fmt.Sprintf("http://127.0.0.1:%d", amPort)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := l.Addr().String()
	go acceptAll(l)
	e := newEnv(t)
	e.env = []string{"SSL_CERT_FILE=" + s.caFile}
	e.start()
	e.write("route.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: all}
spec:
  match: {kinds: [Link]}
  groupWait: 100ms
  repeatInterval: 1h
  receivers:
%s
  - webhook: {url: "http://127.0.0.1:%d/alerts"}
  - alertmanager: {url: %q}
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: flappy}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
`, emailReceiver(s, pwFile), hook, amBase, target))
	e.waitLink("flappy", "Up")
	const receivers = 3
	// Down, Up, Down, Up while every receiver is away; each change waits
	// until its notification is in the outbox for every receiver.
	phases := []string{"Down", "Up", "Down", "Up"}
	for i, phase := range phases {
		if phase == "Down" {
			l.Close()
		} else {
			if l, err = net.Listen("tcp", target); err != nil {
				t.Fatal(err)
			}
			go acceptAll(l)
		}
		e.waitLink("flappy", phase)
		want := int64(receivers * (i + 1))
		e.eventually(fmt.Sprintf("%d deliveries waiting", want), func() bool { return e.getRoute("all").Status.Pending >= want })
	}
	defer l.Close()
	queued := e.getRoute("all").Status
	if queued.Pending != receivers*int64(len(phases)) || queued.Sent != 0 {
		t.Fatalf("with every receiver down: pending %d, sent %d; want %d, 0", queued.Pending, queued.Sent, receivers*len(phases))
	}
	e.eventually("every receiver tried and failing", func() bool { return receiversFailing(e.getRoute("all")) == receivers })

	// The receivers come back.
	var mu sync.Mutex
	var posts []string
	keys := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n struct{ Status string }
		json.Unmarshal(b, &n)
		mu.Lock()
		posts = append(posts, n.Status)
		keys[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	})}
	hl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hook))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(hl)
	defer srv.Close()
	s.start(t)
	startAlertmanager(t, amBin, amPort)
	back := time.Now() // every receiver is serving
	waitfor.Within(t, drainTimeout, "every notification delivered to every receiver", func() bool { return e.getRoute("all").Status.Pending == 0 })
	drained := time.Since(back)
	if r := e.getRoute("all"); r.Status.Sent != receivers*int64(len(phases)) || r.Status.Pending != 0 || receiversFailing(r) != 0 {
		t.Fatalf("after the outbox drained: sent %d, pending %d, %d receivers failing; want %d, 0, 0: %+v",
			r.Status.Sent, r.Status.Pending, receiversFailing(r), receivers*len(phases), r.Status.Conditions)
	}

	// Email: four mails, in order, each once, over STARTTLS with AUTH.
	mails := s.Messages()
	var subjects []string
	ids := map[string]int{}
	for _, m := range mails {
		subjects = append(subjects, m.Header("Subject"))
		ids[m.Header("Message-ID")]++
		if !m.TLS || m.AuthUser != "alerts@example.net" {
			t.Fatalf("mail not sent over STARTTLS with AUTH: %+v", m)
		}
	}
	wantSubjects := []string{"[FIRING] Link flappy is Down", "[RESOLVED] Link flappy is Up", "[FIRING] Link flappy is Down", "[RESOLVED] Link flappy is Up"}
	if strings.Join(subjects, "\n") != strings.Join(wantSubjects, "\n") {
		t.Fatalf("mails %q, want %q", subjects, wantSubjects)
	}
	mailDups := len(mails) - len(ids)
	for id := range ids {
		if id == "" {
			t.Fatalf("a mail without Message-ID: %v", ids)
		}
	}

	// Webhook: four posts, in order, each idempotency key once.
	mu.Lock()
	gotPosts := strings.Join(posts, ",")
	nPosts, hookDups := len(posts), len(posts)-len(keys)
	keysCopy := fmt.Sprint(keys)
	_, emptyKey := keys[""]
	mu.Unlock()
	if gotPosts != "firing,resolved,firing,resolved" {
		t.Fatalf("webhook got %s, want firing,resolved,firing,resolved", gotPosts)
	}
	if emptyKey || hookDups != 0 {
		t.Fatalf("idempotency keys %s: each notification once, with a key", keysCopy)
	}

	// Alertmanager: both firing and both resolved notifications, and the
	// alert is not active in the end.
	firing, resolved := amReceived(t, amBase, "firing"), amReceived(t, amBase, "resolved")
	if firing < 2 || resolved < 2 {
		t.Fatalf("alertmanager received %d firing and %d resolved alerts, want 2 and 2", firing, resolved)
	}
	amDups := firing + resolved - len(phases)
	e.eventually("LinkDown of flappy not active in Alertmanager", func() bool {
		has, answered := amHasAlert(amBase, "LinkDown", "name", "flappy")
		return answered && !has
	})

	delivered := len(mails) + nPosts + firing + resolved
	dups := mailDups + hookDups + amDups
	figure(t, "3 receivers down for %d notifications: %d deliveries queued, %d delivered (%d mails, %d webhook posts, %d+%d alerts in Alertmanager) %s after the receivers came back, %d duplicates",
		len(phases), queued.Pending, delivered, len(mails), nPosts, firing, resolved, drained.Round(100*time.Millisecond), dups)
	if dups != 0 {
		t.Fatalf("%d duplicate deliveries (mail %d, webhook %d, alertmanager %d)", dups, mailDups, hookDups, amDups)
	}
}
