// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/smtptest"
)

// trustedCert is the SMTP sink's certificate; TestMain points SSL_CERT_FILE
// at it before anything loads the system roots (Go loads them once per
// process, so a per-test t.Setenv would only work for the first test).
var trustedCert tls.Certificate

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "receivers-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	c, pemBytes, err := smtptest.SelfSigned("localhost")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	trustedCert = c
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("SSL_CERT_FILE", ca)
	os.Setenv("SSL_CERT_DIR", dir)
	return m.Run()
}

// startSink serves a real SMTP server (test/fixtures/smtptest) for one test.
func startSink(t *testing.T, o smtptest.Options) *smtptest.Sink {
	t.Helper()
	s, err := smtptest.New(o)
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// linkAlert returns a Link alert, resolved when resolved is set.
func linkAlert(name string, resolved bool) Alert {
	a := Alert{
		Name: "LinkDown", Kind: "Link", Object: name, Severity: "critical",
		Labels: map[string]string{"alertname": "LinkDown", "kind": "Link", "name": name, "severity": "critical",
			"site": "hecnet", "app.kubernetes.io/part-of": "decnet"},
		Summary:         "Link " + name + " is Down",
		ResolvedSummary: "Link " + name + " is Up",
		Message:         "dial tcp 127.0.0.1:4242: connect: connection refused",
		StartsAt:        t0,
		Fingerprint:     Fingerprint("LinkDown", "Link", name),
	}
	if resolved {
		a.EndsAt = t0.Add(12 * time.Minute)
	}
	return a
}

// notification returns a notification of route ops with alerts.
func notification(id string, alerts ...Alert) Notification {
	st := StatusResolved
	for _, a := range alerts {
		if a.Firing() {
			st = StatusFiring
		}
	}
	return Notification{
		ID: id, Route: "ops", GroupKey: `{}:{kind="Link"}`, Status: st, Alerts: alerts,
		Host: "hecnet-gw", CreatedAt: t0.Add(5 * time.Minute),
	}
}

// readAll reads r or fails t.
func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
