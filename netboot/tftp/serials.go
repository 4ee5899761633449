// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"net"
	"regexp"
	"strings"
	"sync"
)

// SerialBook learns each Pi's serial number from its TFTP requests (a Pi 4
// asks for "<serial>/start4.elf" first), so later plain-name requests from
// that address are served from <root>/<serial>/ where it exists: use Learn
// in Options.OnContact and Lookup as Options.Serial.
type SerialBook struct{ m sync.Map } // IP string -> serial

// serialRE is a Raspberry Pi serial as it prefixes TFTP paths.
var serialRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

// Learn notes the serial that prefixes path, if it has one, for ip.
func (b *SerialBook) Learn(ip net.IP, path string) {
	if dir, _, ok := strings.Cut(path, "/"); ok && serialRE.MatchString(dir) {
		b.m.Store(ip.String(), dir)
	}
}

// Lookup returns the serial learnt for ip.
func (b *SerialBook) Lookup(ip net.IP) (string, bool) {
	v, ok := b.m.Load(ip.String())
	if !ok {
		return "", false
	}
	return v.(string), true
}
