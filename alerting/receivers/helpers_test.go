// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
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
	c, pemBytes, err := selfSigned("localhost")
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

// selfSigned returns a self-signed certificate for 127.0.0.1 and
// localhost, and its PEM.
func selfSigned(cn string) (tls.Certificate, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	c, err := tls.X509KeyPair(cp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	return c, cp, err
}

// sinkOpts configure an SMTP sink.
type sinkOpts struct {
	cert       *tls.Certificate // offer STARTTLS with it; nil: no STARTTLS
	user, pass string           // AUTH PLAIN credentials, required when user is set
}

// sinkMsg is one message the sink accepted.
type sinkMsg struct {
	From     string
	To       []string
	AuthUser string
	TLS      bool
	Data     []byte
}

// smtpSink is a real SMTP server (go-smtp) on 127.0.0.1.
type smtpSink struct {
	addr string
	mu   sync.Mutex
	msgs []sinkMsg
}

func (s *smtpSink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

func startSink(t *testing.T, o sinkOpts) *smtpSink {
	t.Helper()
	s := &smtpSink{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{sink: s, c: c, o: o}, nil
	}))
	srv.Domain = "localhost"
	// Connections the client drops on purpose (failed TLS) are no news.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes, srv.MaxRecipients = 1<<20, 10
	if o.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*o.cert}}
	} else {
		srv.AllowInsecureAuth = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

type sinkSession struct {
	sink *smtpSink
	c    *gosmtp.Conn
	o    sinkOpts
	rec  sinkMsg
}

func (s *sinkSession) AuthMechanisms() []string {
	if s.o.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, u, p string) error {
		if u != s.o.user || p != s.o.pass {
			return gosmtp.ErrAuthFailed
		}
		s.rec.AuthUser = u
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.o.user != "" && s.rec.AuthUser == "" {
		return gosmtp.ErrAuthRequired
	}
	s.rec.From = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.rec.To = append(s.rec.To, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.rec
	m.Data = b
	_, m.TLS = s.c.TLSConnectionState()
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, m)
	s.sink.mu.Unlock()
	return nil
}

func (s *sinkSession) Reset()        { s.rec = sinkMsg{AuthUser: s.rec.AuthUser} }
func (s *sinkSession) Logout() error { return nil }

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
