// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type alertRoute struct {
	Status struct {
		Phase      string `json:"phase"`
		Sent       int64  `json:"sent"`
		Failed     int64  `json:"failed"`
		Pending    int64  `json:"pending"`
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (e *env) getRoute(name string) alertRoute {
	out, _, _ := e.ctlQuiet("get", "alertroute/"+name, "-o", "json")
	var r alertRoute
	json.Unmarshal([]byte(out), &r)
	return r
}

// alertSetup: an SMTP sink, a password file, an AlertRoute mailing Link
// alerts, and a Link to a port the test opens and closes.
func alertSetup(t *testing.T, password string) (*env, *sink, net.Listener, string) {
	s := newSink(t, "alerts@example.net", "s3cret")
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	e := newEnv(t)
	e.env = []string{"SSL_CERT_FILE=" + s.caFile}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptAll(l)
	addr := l.Addr().String()
	e.write("alerts.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: ops-email}
spec:
  match: {kinds: [Link], severity: warning}
  groupWait: 200ms
  repeatInterval: 1h
  receivers:
%s
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: a2rtr}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 2
`, emailReceiver(s, pwFile), addr))
	return e, s, l, addr
}

// emailReceiver is the YAML of a receiver (an item of an AlertRoute's
// receivers, indented as one) mailing through s over STARTTLS with AUTH.
func emailReceiver(s *sink, pwFile string) string {
	return fmt.Sprintf(`  - email:
      smarthost: %q
      starttls: true
      username: alerts@example.net
      passwordFile: %q
      from: alerts@example.net
      to: [ops@example.net]`, s.Addr(), pwFile)
}

// Link down -> one [FIRING] mail with the details; up again -> one
// [RESOLVED] mail; the route counts both.
func TestAlertEmailFiringAndResolved(t *testing.T) {
	e, s, l, addr := alertSetup(t, "s3cret")
	s.start(t)
	e.start()
	e.waitLink("a2rtr", "Up")
	l.Close()
	e.waitLink("a2rtr", "Down")
	e.eventually("FIRING mail", func() bool { return len(s.Messages()) >= 1 })
	m := s.Messages()[0]
	host, _ := os.Hostname()
	if m.Header("Subject") != "[FIRING] Link a2rtr is Down" || len(m.To) != 1 || m.To[0] != "ops@example.net" || !m.TLS {
		t.Fatalf("firing mail: %+v", m)
	}
	for _, want := range []string{host, "reconcilectl describe link/a2rtr", "ConnectionRefused"} {
		if !strings.Contains(m.Body(), want) {
			t.Fatalf("firing mail body lacks %q:\n%s", want, m.Body())
		}
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go acceptAll(l2)
	e.waitLink("a2rtr", "Up")
	e.eventually("RESOLVED mail", func() bool { return len(s.Messages()) >= 2 })
	if m := s.Messages()[1]; m.Header("Subject") != "[RESOLVED] Link a2rtr is Up" {
		t.Fatalf("resolved mail: %+v", m)
	}
	e.eventually("route status counts 2 sent", func() bool {
		r := e.getRoute("ops-email")
		return r.Status.Sent == 2 && r.Status.Phase == "Ready" && r.Status.Pending == 0
	})
	if n := len(s.Messages()); n != 2 {
		t.Fatalf("%d mails, want exactly 2", n)
	}
}

// A wrong password shows in the route's status (never the password).
func TestAlertWrongPasswordInStatus(t *testing.T) {
	e, s, l, _ := alertSetup(t, "not-the-password")
	s.start(t)
	e.start()
	e.waitLink("a2rtr", "Up")
	l.Close()
	e.waitLink("a2rtr", "Down")
	var r alertRoute
	e.eventually("route degraded", func() bool {
		r = e.getRoute("ops-email")
		return r.Status.Phase == "Degraded" && r.Status.Failed >= 1
	})
	b, _ := json.Marshal(r)
	if !strings.Contains(strings.ToLower(string(b)), "auth") || strings.Contains(string(b), "not-the-password") {
		t.Fatalf("route status should name the authentication failure, not the password: %s", b)
	}
	if len(s.Messages()) != 0 {
		t.Fatal("a mail got through with a wrong password")
	}
}

// The outbox is durable: the SMTP server is down when the link goes down,
// the daemon is killed with -9, then both come back: exactly one mail.
func TestAlertOutboxSurvivesKill9(t *testing.T) {
	e, s, l, addr := alertSetup(t, "s3cret")
	e.start()
	e.waitLink("a2rtr", "Up")
	l.Close()
	e.waitLink("a2rtr", "Down")
	e.eventually("notification pending in the outbox", func() bool {
		r := e.getRoute("ops-email")
		return r.Status.Pending >= 1 && r.Status.Failed >= 1
	})
	e.stop(syscall.SIGKILL)
	// The link recovers while no daemon runs: a fresh daemon would see
	// nothing wrong and raise nothing. Only the outbox can deliver the
	// FIRING notification queued before the kill (issue 12: with the link
	// still down, a daemon without persistence passed this test).
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go acceptAll(l2)
	s.start(t)
	e.start()
	e.eventually("the FIRING mail from the outbox, then the RESOLVED one", func() bool { return len(s.Messages()) >= 2 })
	e.eventually("outbox drained", func() bool {
		r := e.getRoute("ops-email")
		return r.Status.Pending == 0 && r.Status.Sent >= 2
	})
	msgs := s.Messages()
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Header("Subject"))
	}
	if len(msgs) != 2 || subjects[0] != "[FIRING] Link a2rtr is Down" || subjects[1] != "[RESOLVED] Link a2rtr is Up" {
		t.Fatalf("mails after the restart: %q, want exactly the queued FIRING, then RESOLVED", subjects)
	}
	if msgs[0].Header("Message-Id") == msgs[1].Header("Message-Id") {
		t.Errorf("FIRING and RESOLVED share a Message-ID")
	}
}
