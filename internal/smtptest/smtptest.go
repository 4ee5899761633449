// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package smtptest is a real SMTP server (emersion/go-smtp) on 127.0.0.1
// for tests and benchmarks: optional STARTTLS with a self-signed
// certificate, optional AUTH PLAIN, every accepted message kept in memory
// with the time it was accepted. It can be stopped and started again on
// the same address, to play a mail server that is down for a while.
package smtptest

import (
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
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Sink.
type Options struct {
	// Cert, when set, is offered through STARTTLS.
	Cert *tls.Certificate
	// User and Pass, when User is set, are required with AUTH PLAIN before
	// MAIL FROM.
	User, Pass string
}

// Message is one message the sink accepted.
type Message struct {
	From     string
	To       []string
	AuthUser string
	TLS      bool
	Data     []byte
	At       time.Time
}

// Header returns a header of the message ("" when absent or unparsable).
func (m Message) Header(name string) string {
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

// Body returns the message body with CRLF turned into LF.
func (m Message) Body() string {
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(msg.Body)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// Sink is the server.
type Sink struct {
	opts Options
	addr string
	mu   sync.Mutex
	msgs []Message
	srv  *smtp.Server
	done chan struct{}
}

// New reserves a loopback address for a sink; Start serves it.
func New(o Options) (*Sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return &Sink{opts: o, addr: addr}, nil
}

// Addr is the sink's host:port.
func (s *Sink) Addr() string { return s.addr }

// Start serves the address (again, after Stop). The port may linger for a
// moment after Stop, so binding is retried for up to 2 s.
func (s *Sink) Start() error {
	var l net.Listener
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; {
		if l, err = net.Listen("tcp", s.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // waiting for the old socket to go
	}
	if err != nil {
		return fmt.Errorf("smtptest: listen %s: %w", s.addr, err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{sink: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that drop on purpose are no news
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes, srv.MaxRecipients = 1<<20, 10
	if s.opts.Cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.opts.Cert}}
	} else {
		srv.AllowInsecureAuth = true
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.done = srv, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	return nil
}

// Stop closes the server and waits for it; Start may follow.
func (s *Sink) Stop() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// Messages returns the accepted messages, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

type session struct {
	sink *Sink
	c    *smtp.Conn
	rec  Message
}

func (s *session) AuthMechanisms() []string {
	if s.sink.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, u, p string) error {
		if u != s.sink.opts.User || p != s.sink.opts.Pass {
			return smtp.ErrAuthFailed
		}
		s.rec.AuthUser = u
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.opts.User != "" && s.rec.AuthUser == "" {
		return smtp.ErrAuthRequired
	}
	s.rec.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rec.To = append(s.rec.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.rec
	m.Data, m.At = b, time.Now()
	_, m.TLS = s.c.TLSConnectionState()
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, m)
	s.sink.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.rec = Message{AuthUser: s.rec.AuthUser} }
func (s *session) Logout() error { return nil }

// SelfSigned returns a self-signed CA certificate for 127.0.0.1 and
// localhost, and its PEM (for SSL_CERT_FILE).
func SelfSigned(cn string) (tls.Certificate, []byte, error) {
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
