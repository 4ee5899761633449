// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"net"
	"testing"
)

// A Pi's serial is learned from its first serial-prefixed TFTP request.
func TestSerialBook(t *testing.T) {
	var b SerialBook
	ip := net.ParseIP("10.77.0.10")
	if _, ok := b.Lookup(ip); ok {
		t.Fatal("a serial before any request")
	}
	b.Learn(ip, "start4.elf")
	b.Learn(ip, "../etc/passwd")
	if _, ok := b.Lookup(ip); ok {
		t.Fatal("a serial learned from a plain name")
	}
	b.Learn(ip, "c0ffee01/start4.elf")
	if s, ok := b.Lookup(ip); !ok || s != "c0ffee01" {
		t.Fatalf("serial %q %v", s, ok)
	}
	if _, ok := b.Lookup(net.ParseIP("10.77.0.11")); ok {
		t.Fatal("another address got the serial")
	}
}
