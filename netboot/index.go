// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package netboot holds what the netboot servers (dhcp, tftp, handshake)
// share: the Index of declared nodes they answer for.
package netboot

import (
	"net"
	"sort"
	"sync"
)

// Clash names the address a node could not claim and who holds it.
type Clash struct {
	// Address is "MAC" or "IP".
	Address string
	// Holder is the node that keeps it.
	Holder string
}

// Index maps the MAC and IP addresses of declared nodes to their names,
// for the netboot servers' lookups (by MAC for DHCP, by IP for TFTP and
// the handshake), and settles clashes: when two nodes declare one MAC or
// IP, the first by name keeps it, whatever the order they were declared
// in, and the other gets neither address until the clash is gone. It is
// safe for concurrent use; lookups never wait for a claim for long.
type Index struct {
	mu     sync.RWMutex
	byMAC  map[string]string // mac -> name
	byIP   map[string]string // ip -> name
	held   map[string]claim  // name -> its addresses, while it holds them
	losers map[string]bool   // names that lost a clash
}

type claim struct{ mac, ip string }

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{byMAC: map[string]string{}, byIP: map[string]string{}, held: map[string]claim{}, losers: map[string]bool{}}
}

// Claim gives name the addresses mac and ip, unless a node earlier by name
// holds one of them: then clash says which, and name holds nothing.
// recheck lists the nodes whose standing may have changed (a later holder
// that lost the addresses to name, or losers that may win now that
// addresses moved): look at them again.
func (x *Index) Claim(name string, mac net.HardwareAddr, ip net.IP) (clash *Clash, recheck []string) {
	want := claim{mac.String(), ip.String()}
	x.mu.Lock()
	defer x.mu.Unlock()
	before, had := x.held[name]
	x.dropLocked(name)
	for _, c := range []struct {
		m         map[string]string
		key, what string
	}{{x.byMAC, want.mac, "MAC"}, {x.byIP, want.ip, "IP"}} {
		if holder, ok := c.m[c.key]; ok && holder < name {
			x.losers[name] = true
			if had {
				recheck = x.losersLocked(name)
			}
			return &Clash{Address: c.what, Holder: holder}, recheck
		}
	}
	// Later holders of either address lose them to us.
	for _, m := range []map[string]string{x.byMAC, x.byIP} {
		for _, key := range []string{want.mac, want.ip} {
			if holder, ok := m[key]; ok && holder != name {
				x.dropLocked(holder)
				x.losers[holder] = true
				recheck = append(recheck, holder)
			}
		}
	}
	delete(x.losers, name)
	if !had || before != want {
		recheck = append(recheck, x.losersLocked(name)...) // addresses moved: a loser may win now
	}
	x.byMAC[want.mac], x.byIP[want.ip] = name, name
	x.held[name] = want
	return nil, dedup(recheck)
}

// Release drops what name holds (deleted, or its spec no longer valid for
// netboot) and returns the nodes that may take its addresses now.
func (x *Index) Release(name string) (recheck []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, had := x.held[name]
	x.dropLocked(name)
	wasLoser := x.losers[name]
	delete(x.losers, name)
	if !had && !wasLoser {
		return nil
	}
	return x.losersLocked(name)
}

// ByMAC returns the node that holds mac.
func (x *Index) ByMAC(mac net.HardwareAddr) (name string, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	name, ok = x.byMAC[mac.String()]
	return name, ok
}

// Lookup returns the node that holds mac and the IP it holds with it (the
// DHCP server's question).
func (x *Index) Lookup(mac net.HardwareAddr) (name string, ip net.IP, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	name, ok = x.byMAC[mac.String()]
	if !ok {
		return "", nil, false
	}
	return name, net.ParseIP(x.held[name].ip).To4(), true
}

// ByIP returns the node that holds ip.
func (x *Index) ByIP(ip net.IP) (name string, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	name, ok = x.byIP[ip.String()]
	return name, ok
}

// dropLocked removes what name holds.
func (x *Index) dropLocked(name string) {
	if c, ok := x.held[name]; ok {
		if x.byMAC[c.mac] == name {
			delete(x.byMAC, c.mac)
		}
		if x.byIP[c.ip] == name {
			delete(x.byIP, c.ip)
		}
		delete(x.held, name)
	}
}

// losersLocked lists the nodes that lost a clash, but self.
func (x *Index) losersLocked(self string) []string {
	var out []string
	for n := range x.losers {
		if n != self {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func dedup(names []string) []string {
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out
}
