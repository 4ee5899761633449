// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"net"
	"testing"
)

// A Pi's serial is learned from its first serial-prefixed TFTP request.
func TestSerialBook(t *testing.T) {
	var b serialBook
	ip := net.ParseIP("10.77.0.10")
	if _, ok := b.lookup(ip); ok {
		t.Fatal("a serial before any request")
	}
	b.learn(ip, "start4.elf")
	b.learn(ip, "../etc/passwd")
	if _, ok := b.lookup(ip); ok {
		t.Fatal("a serial learned from a plain name")
	}
	b.learn(ip, "c0ffee01/start4.elf")
	if s, ok := b.lookup(ip); !ok || s != "c0ffee01" {
		t.Fatalf("serial %q %v", s, ok)
	}
	if _, ok := b.lookup(net.ParseIP("10.77.0.11")); ok {
		t.Fatal("another address got the serial")
	}
}
