// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package netboot

import (
	"net"
	"slices"
	"testing"
)

func mac(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}

// The first by name keeps a clashing address, whatever the order of the
// claims; the loser takes it once the clash is gone.
func TestIndexClashes(t *testing.T) {
	x := NewIndex()
	m1, m2 := mac("dc:a6:32:00:00:01"), mac("dc:a6:32:00:00:02")
	ip1, ip2 := net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2)
	if c, _ := x.Claim("pi-b", m1, ip1); c != nil {
		t.Fatalf("first claim clashed: %+v", c)
	}
	// pi-a is earlier by name: it takes the MAC from pi-b.
	c, recheck := x.Claim("pi-a", m1, ip2)
	if c != nil || !slices.Equal(recheck, []string{"pi-b"}) {
		t.Fatalf("pi-a: clash %+v, recheck %v", c, recheck)
	}
	if n, _ := x.ByMAC(m1); n != "pi-a" {
		t.Fatalf("mac held by %s", n)
	}
	if _, ok := x.ByIP(ip1); ok {
		t.Fatal("pi-b keeps its IP after losing its MAC")
	}
	// pi-b looks again: it loses.
	if c, _ := x.Claim("pi-b", m1, ip1); c == nil || c.Address != "MAC" || c.Holder != "pi-a" {
		t.Fatalf("pi-b: %+v", c)
	}
	// An IP clash.
	if c, _ := x.Claim("pi-c", m2, ip2); c == nil || c.Address != "IP" || c.Holder != "pi-a" {
		t.Fatalf("pi-c: %+v", c)
	}
	// pi-a goes: the losers may win now.
	if recheck := x.Release("pi-a"); !slices.Equal(recheck, []string{"pi-b", "pi-c"}) {
		t.Fatalf("release: recheck %v", recheck)
	}
	if c, _ := x.Claim("pi-b", m1, ip1); c != nil {
		t.Fatalf("pi-b after the release: %+v", c)
	}
	if n, ok := x.ByIP(ip1); !ok || n != "pi-b" {
		t.Fatalf("ip1 held by %q %v", n, ok)
	}
	// Claiming the same again changes nothing for others.
	if c, recheck := x.Claim("pi-b", m1, ip1); c != nil || len(recheck) > 1 {
		t.Fatalf("same claim: %+v %v", c, recheck)
	}
}
