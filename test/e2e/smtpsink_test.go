// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures/smtptest"
)

// sink is a real SMTP server offering STARTTLS (a self-signed certificate
// the daemon trusts through SSL_CERT_FILE=caFile) and requiring AUTH PLAIN.
type sink struct {
	*smtptest.Sink
	caFile string
}

// newSink reserves the sink's address; start serves it.
func newSink(t *testing.T, user, pass string) *sink {
	t.Helper()
	cert, caPEM, err := smtptest.SelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := smtptest.New(smtptest.Options{Cert: &cert, User: user, Pass: pass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &sink{Sink: s, caFile: caFile}
}

func (s *sink) start(t *testing.T) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
}
