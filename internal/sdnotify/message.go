// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package sdnotify serves the systemd sd_notify protocol to supervised
// programs.
//
// Each supervised program gets its own unixgram socket (see Listen) whose
// address is passed to the program in the NOTIFY_SOCKET environment variable,
// so programs written against go-systemd's daemon.SdNotify, pystemd's
// daemon.notify or libsystemd's sd_notify(3) work unchanged. Every datagram
// is parsed by ParseMessage and handed, together with the kernel-verified
// sender pid, to a handler.
package sdnotify

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// MaxMessageSize is the largest datagram accepted, in bytes. It matches
// systemd's limit (PIPE_BUF).
const MaxMessageSize = 4096

// Message is one parsed sd_notify datagram (newline-separated KEY=VALUE
// assignments).
//
// When a key is repeated, the first assignment is used for the typed fields
// and for Fields, as systemd does; the boolean flags are set when any
// assignment sets them.
type Message struct {
	// Ready is set by READY=1.
	Ready bool
	// Reloading is set by RELOADING=1.
	Reloading bool
	// Stopping is set by STOPPING=1.
	Stopping bool
	// Watchdog is set by WATCHDOG=1 (a keep-alive ping).
	Watchdog bool
	// WatchdogTrigger is set by WATCHDOG=trigger (the program asks to be
	// treated as if its watchdog expired).
	WatchdogTrigger bool
	// Status is the value of STATUS=, nil when absent.
	Status *string
	// MainPID is the value of MAINPID=, 0 when absent.
	MainPID int
	// Errno is the value of ERRNO=, 0 when absent.
	Errno int
	// WatchdogUSec is the value of WATCHDOG_USEC= (a new watchdog timeout in
	// microseconds), nil when absent.
	WatchdogUSec *uint64
	// ExtendTimeoutUSec is the value of EXTEND_TIMEOUT_USEC=, nil when absent.
	ExtendTimeoutUSec *uint64
	// Fields holds every assignment, including unknown ones such as FDSTORE=1
	// or MONOTONIC_USEC=. It is never nil for a successfully parsed message.
	Fields map[string]string
}

// ParseMessage parses an sd_notify datagram.
//
// The rules follow sd_notify(3): assignments are separated by "\n", a
// trailing newline is allowed and empty lines are ignored; a line without "="
// (or with an empty key) is an error. Only the value "1" sets Ready,
// Reloading, Stopping and Watchdog; WATCHDOG=trigger sets WatchdogTrigger;
// other values of these keys are kept in Fields but set nothing. The numeric
// values MAINPID= (a positive pid), ERRNO= (non-negative), WATCHDOG_USEC= and
// EXTEND_TIMEOUT_USEC= must be decimal numbers; an invalid one is an error
// naming the key. Datagrams larger than MaxMessageSize or containing a NUL
// byte are rejected. An empty datagram yields an empty Message.
//
// ParseMessage never panics.
func ParseMessage(b []byte) (Message, error) {
	if len(b) > MaxMessageSize {
		return Message{}, fmt.Errorf("notify message of %d bytes exceeds the limit of %d bytes", len(b), MaxMessageSize)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return Message{}, errors.New("notify message contains a NUL byte")
	}
	m := Message{Fields: map[string]string{}}
	for lineNo, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return Message{}, fmt.Errorf("notify message line %d %q is not a KEY=VALUE assignment", lineNo+1, truncate(line))
		}
		if len(k) == 0 {
			return Message{}, fmt.Errorf("notify message line %d %q has an empty key", lineNo+1, truncate(line))
		}
		key, val := string(k), string(v)
		// Flags are set by any assignment, like systemd's strv_contains.
		switch {
		case key == "READY" && val == "1":
			m.Ready = true
		case key == "RELOADING" && val == "1":
			m.Reloading = true
		case key == "STOPPING" && val == "1":
			m.Stopping = true
		case key == "WATCHDOG" && val == "1":
			m.Watchdog = true
		case key == "WATCHDOG" && val == "trigger":
			m.WatchdogTrigger = true
		}
		if _, dup := m.Fields[key]; dup {
			continue // the first assignment wins, as in systemd
		}
		m.Fields[key] = val
		if err := m.setTyped(key, val); err != nil {
			return Message{}, err
		}
	}
	return m, nil
}

// setTyped stores the value of a known valued key in its typed field.
func (m *Message) setTyped(key, val string) error {
	switch key {
	case "STATUS":
		s := val
		m.Status = &s
	case "MAINPID":
		pid, err := parseDecimal(val, 31)
		if err != nil || pid == 0 {
			return fmt.Errorf("invalid MAINPID=%q: not a positive pid", truncate([]byte(val)))
		}
		m.MainPID = int(pid)
	case "ERRNO":
		e, err := parseDecimal(val, 31)
		if err != nil {
			return fmt.Errorf("invalid ERRNO=%q: %w", truncate([]byte(val)), err)
		}
		m.Errno = int(e)
	case "WATCHDOG_USEC":
		u, err := parseDecimal(val, 64)
		if err != nil {
			return fmt.Errorf("invalid WATCHDOG_USEC=%q: %w", truncate([]byte(val)), err)
		}
		m.WatchdogUSec = &u
	case "EXTEND_TIMEOUT_USEC":
		u, err := parseDecimal(val, 64)
		if err != nil {
			return fmt.Errorf("invalid EXTEND_TIMEOUT_USEC=%q: %w", truncate([]byte(val)), err)
		}
		m.ExtendTimeoutUSec = &u
	}
	return nil
}

var errNotDecimal = errors.New("not a non-negative decimal number")

// parseDecimal parses a non-empty string of ASCII digits (no sign, no
// spaces) that fits in bits bits.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, errNotDecimal
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errNotDecimal
		}
	}
	u, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("out of range: %w", err)
	}
	return u, nil
}

// truncate shortens b for inclusion in an error message.
func truncate(b []byte) string {
	const max = 64
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max]) + "..."
}
