// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/smtptest"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

const (
	smtpUser = "alerts@example.net"
	smtpPass = "correct horse battery staple"
)

// emailSpec returns an email receiver for sink with STARTTLS and AUTH.
func emailSpec(t *testing.T, addr, password string) v1alpha1.Receiver {
	return v1alpha1.Receiver{Email: &v1alpha1.EmailReceiver{
		Smarthost: addr, StartTLS: true, Username: smtpUser,
		PasswordFile: writeFile(t, "smtp-password", password+"\n"),
		From:         "Reconciled <alerts@example.net>",
		To:           []string{"ops@example.net", "Night Shift <noc@example.net>"},
	}}
}

func newReceiver(t *testing.T, spec v1alpha1.Receiver, index int, o Options) Receiver {
	t.Helper()
	r, err := New(spec, index, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// parsedMail is a received message, decoded.
type parsedMail struct {
	header  mail.Header
	subject string
	body    string
}

func parseMail(t *testing.T, data []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	return parsedMail{header: m.Header, subject: subject, body: strings.ReplaceAll(string(readAll(t, body)), "\r\n", "\n")}
}

func TestEmailDelivery(t *testing.T) {
	sink := startSink(t, smtptest.Options{Cert: &trustedCert, User: smtpUser, Pass: smtpPass})
	r := newReceiver(t, emailSpec(t, sink.Addr(), smtpPass), 0, Options{Timeout: 10 * time.Second})
	if r.Name() != "email[0]" {
		t.Errorf("Name() = %q, want email[0]", r.Name())
	}
	testN := notification("n-test", linkAlert("a2rtr", false))
	testN.Test = true
	for _, tc := range []struct {
		name        string
		n           Notification
		subject     string
		status      string
		body        []string
		bodyMissing []string
	}{{
		name:    "firing",
		n:       notification("n-0001", linkAlert("a2rtr", false)),
		subject: "[FIRING] Link a2rtr is Down",
		status:  "firing",
		body: []string{
			"hecnet-gw", "[FIRING] Link a2rtr is Down",
			"since:    2026-03-04T05:06:07Z (for 5m)",
			"message:  dial tcp 127.0.0.1:4242: connect: connection refused",
			"app.kubernetes.io/part-of=decnet", "site=hecnet", "severity: critical",
			"reconcilectl describe link/a2rtr",
		},
		bodyMissing: []string{"test notification", "resolved:"},
	}, {
		name:    "resolved",
		n:       notification("n-0002", linkAlert("a2rtr", true)),
		subject: "[RESOLVED] Link a2rtr is Up",
		status:  "resolved",
		body: []string{
			"hecnet-gw", "[RESOLVED] Link a2rtr is Up", "since:    2026-03-04T05:06:07Z (for 12m)",
			"resolved: 2026-03-04T05:18:07Z", "reconcilectl describe link/a2rtr",
		},
	}, {
		name:    "resolved without resolved summary",
		n:       notification("n-0003", func() Alert { a := linkAlert("a2rtr", true); a.ResolvedSummary = ""; return a }()),
		subject: "[RESOLVED] Link a2rtr is Down resolved",
		status:  "resolved",
	}, {
		name:    "grouped",
		n:       notification("n-0004", linkAlert("a2rtr", false), linkAlert("b3rtr", false), linkAlert("c4rtr", false), linkAlert("d5rtr", true)),
		subject: "[FIRING:3] Link a2rtr is Down (+2 more)",
		status:  "firing",
		body: []string{
			"3 firing, 1 resolved", "reconcilectl describe link/a2rtr", "reconcilectl describe link/b3rtr",
			"reconcilectl describe link/c4rtr", "[RESOLVED] Link d5rtr is Up",
		},
	}, {
		name:    "test",
		n:       testN,
		subject: "[TEST] [FIRING] Link a2rtr is Down",
		status:  "firing",
		body:    []string{"test notification", "reconcilectl describe link/a2rtr"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(sink.Messages())
			if err := r.Send(context.Background(), tc.n); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := sink.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("sink has %d messages, want %d", len(msgs), before+1)
			}
			got := msgs[len(msgs)-1]
			if got.From != "alerts@example.net" || !got.TLS || got.AuthUser != smtpUser {
				t.Errorf("envelope from %q, TLS %v, auth user %q; want alerts@example.net over TLS as %s", got.From, got.TLS, got.AuthUser, smtpUser)
			}
			if diff := cmp.Diff([]string{"ops@example.net", "noc@example.net"}, got.To); diff != "" {
				t.Errorf("recipients (-want +got):\n%s", diff)
			}
			m := parseMail(t, got.Data)
			if m.subject != tc.subject {
				t.Errorf("Subject = %q, want %q", m.subject, tc.subject)
			}
			for k, want := range map[string]string{
				"X-Reconciled-Status": tc.status, "X-Reconciled-Route": "ops", "MIME-Version": "1.0",
				"Content-Type": "text/plain; charset=utf-8", "Message-ID": "<" + tc.n.ID + "@hecnet-gw>",
				"From": `"Reconciled" <alerts@example.net>`, "To": `<ops@example.net>, "Night Shift" <noc@example.net>`,
			} {
				if v := m.header.Get(k); v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
			if d, err := m.header.Date(); err != nil || !d.Equal(tc.n.CreatedAt) {
				t.Errorf("Date = %v (%v), want %v", d, err, tc.n.CreatedAt)
			}
			for _, s := range tc.body {
				if !strings.Contains(m.body, s) {
					t.Errorf("body lacks %q:\n%s", s, m.body)
				}
			}
			for _, s := range tc.bodyMissing {
				if strings.Contains(m.body, s) {
					t.Errorf("body has %q:\n%s", s, m.body)
				}
			}
		})
	}
}

func TestEmailMessageIDStable(t *testing.T) {
	sink := startSink(t, smtptest.Options{Cert: &trustedCert, User: smtpUser, Pass: smtpPass})
	r := newReceiver(t, emailSpec(t, sink.Addr(), smtpPass), 2, Options{})
	n := notification("01JABCDEF", linkAlert("a2rtr", false))
	other := n
	other.ID = "01JGHIJKL"
	for _, n := range []Notification{n, n, other} {
		if err := r.Send(context.Background(), n); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs := sink.Messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, parseMail(t, m.Data).header.Get("Message-ID"))
	}
	if ids[0] != "<01JABCDEF@hecnet-gw>" || ids[1] != ids[0] {
		t.Errorf("Message-IDs of a retry: %q, %q; want both <01JABCDEF@hecnet-gw>", ids[0], ids[1])
	}
	if ids[2] == ids[0] {
		t.Errorf("different notifications share Message-ID %q", ids[2])
	}
	// An ID that is no valid msg-id part is hashed, stably.
	odd := notification("route ops/<1>@x", linkAlert("a2rtr", false))
	if a, b := MessageID(odd), MessageID(odd); a != b || !regexp.MustCompile(`^<[0-9a-f]{32}@hecnet-gw>$`).MatchString(a) {
		t.Errorf("MessageID(%q) = %q, %q", odd.ID, a, b)
	}
}

func TestEmailErrors(t *testing.T) {
	tlsSink := startSink(t, smtptest.Options{Cert: &trustedCert, User: smtpUser, Pass: smtpPass})
	plainSink := startSink(t, smtptest.Options{User: smtpUser, Pass: smtpPass})
	other, _, err := smtptest.SelfSigned("untrusted")
	if err != nil {
		t.Fatal(err)
	}
	untrustedSink := startSink(t, smtptest.Options{Cert: &other, User: smtpUser, Pass: smtpPass})
	missing := filepath.Join(t.TempDir(), "no-such-password")
	n := notification("n-1", linkAlert("a2rtr", false))

	for _, tc := range []struct {
		name    string
		sink    *smtptest.Sink
		spec    func(*v1alpha1.EmailReceiver)
		pass    string
		want    []string
		notWant []string
	}{{
		name:    "wrong password",
		sink:    tlsSink,
		pass:    "Tr0ub4dor&3-wrong",
		want:    []string{"authentication", smtpUser, "535"},
		notWant: []string{"Tr0ub4dor"},
	}, {
		name: "missing password file",
		sink: tlsSink,
		pass: smtpPass,
		spec: func(e *v1alpha1.EmailReceiver) { e.PasswordFile = missing },
		want: []string{missing, "no such file"},
	}, {
		name: "no STARTTLS offered",
		sink: plainSink,
		pass: smtpPass,
		want: []string{"does not offer STARTTLS"},
	}, {
		name:    "untrusted certificate",
		sink:    untrustedSink,
		pass:    smtpPass,
		want:    []string{"STARTTLS", "certificate"},
		notWant: []string{smtpPass},
	}, {
		name: "AUTH not offered before STARTTLS",
		sink: tlsSink,
		pass: smtpPass,
		spec: func(e *v1alpha1.EmailReceiver) { e.StartTLS = false },
		want: []string{"does not offer AUTH"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := emailSpec(t, tc.sink.Addr(), tc.pass)
			if tc.spec != nil {
				tc.spec(spec.Email)
			}
			before := len(tc.sink.Messages())
			err := newReceiver(t, spec, 0, Options{Timeout: 10 * time.Second}).Send(context.Background(), n)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			for _, s := range append(tc.notWant, smtpPass) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
			if got := len(tc.sink.Messages()); got != before {
				t.Errorf("sink received %d messages, want none", got-before)
			}
		})
	}
}

// TestEmailHonoursContext talks to a listener that accepts and never
// answers: cancelling the context ends Send.
func TestEmailHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	r := newReceiver(t, emailSpec(t, ln.Addr().String(), smtpPass), 0, Options{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Send(ctx, notification("n-1", linkAlert("a2rtr", false))) }()
	c := <-accepted
	defer c.Close()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after cancel")
	}

	// The per-send timeout works the same way.
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	r = newReceiver(t, emailSpec(t, ln.Addr().String(), smtpPass), 0, Options{Timeout: 50 * time.Millisecond})
	err = r.Send(context.Background(), notification("n-1", linkAlert("a2rtr", false)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
	(<-accepted).Close()
}

func TestSubject(t *testing.T) {
	resolvedGroup := notification("x", linkAlert("a", true), linkAlert("b", true))
	empty := notification("x")
	empty.Status = StatusFiring
	for _, tc := range []struct {
		n    Notification
		want string
	}{
		{notification("x", linkAlert("a2rtr", false)), "[FIRING] Link a2rtr is Down"},
		{notification("x", linkAlert("a", false), linkAlert("b", false)), "[FIRING:2] Link a is Down (+1 more)"},
		{notification("x", linkAlert("a", true), linkAlert("b", false)), "[FIRING] Link b is Down"},
		{resolvedGroup, "[RESOLVED:2] Link a is Up (+1 more)"},
		{empty, "[FIRING] reconciled route ops"},
	} {
		if got := Subject(tc.n); got != tc.want {
			t.Errorf("Subject = %q, want %q", got, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 45 * time.Second: "45s", 5 * time.Minute: "5m", 330 * time.Second: "5m30s",
		2*time.Hour + 5*time.Minute + 3*time.Second: "2h5m", 76 * time.Hour: "3d4h", 48 * time.Hour: "2d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
