// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/smtptest"
)

// alertLatency: a Link's remote end goes away; time until the FIRING mail
// is accepted by the SMTP server, minus groupWait (the deliberate wait).
func (b *bench) alertLatency() []row {
	const groupWait = 200 * time.Millisecond
	sink, err := smtptest.New(smtptest.Options{})
	check(err)
	check(sink.Start())
	defer sink.Stop()
	target, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := target.Addr().String()
	accept := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go accept(target)
	dir, state := b.newDirs("alert")
	content := fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: mail}
spec:
  match: {kinds: [Link]}
  groupWait: %s
  receivers:
  - email: {smarthost: %q, from: bench@example.net, to: [ops@example.net]}
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: l}
spec:
  tcp: {address: %q}
  interval: 20ms
  timeout: 20ms
  failureThreshold: 1
`, groupWait, sink.Addr(), addr)
	check(os.WriteFile(filepath.Join(dir, "alert.yaml"), []byte(content), 0o644))
	d := b.startDaemon(dir, state)
	defer d.stop()
	if _, err := waitFiles(dir, "phase: Up", time.Minute); err != nil {
		fatalf("alert: %v", err)
	}
	samples := 20
	if *quick {
		samples = 5
	}
	var lat []time.Duration
	for i := 0; i < samples; i++ {
		before := len(sink.Messages())
		t0 := time.Now()
		target.Close()
		waitCount(sink, before+1)
		m := sink.Messages()[before]
		if subject := m.Header("Subject"); !strings.HasPrefix(subject, "[FIRING]") {
			fatalf("alert: expected a FIRING mail, got %q", subject)
		}
		lat = append(lat, m.At.Sub(t0)-groupWait)
		target, err = net.Listen("tcp", addr)
		check(err)
		go accept(target)
		waitCount(sink, before+2) // the RESOLVED mail
	}
	target.Close()
	logf("alert: link down -> FIRING mail accepted, minus groupWait %s: p50 %s p99 %s (includes detection: 20 ms probes, failureThreshold 1)",
		groupWait, ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)))
	return []row{
		{what: "link down -> mail accepted by SMTP, minus groupWait, p50", ours: ms(percentile(lat, 0.5)), target: "<= 100 ms"},
		{what: "link down -> mail accepted by SMTP, minus groupWait, p99", ours: ms(percentile(lat, 0.99)), target: "<= 100 ms"},
	}
}

func waitCount(s *smtptest.Sink, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for len(s.Messages()) < n {
		if time.Now().After(deadline) {
			fatalf("alert: mail %d did not arrive", n)
		}
		time.Sleep(2 * time.Millisecond) // polling the sink; resolution well below the figures measured
	}
}
