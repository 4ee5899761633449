// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package poe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gosnmp/gosnmp"
)

// PSEGroup is the pethPsePortGroupIndex SetPower and GetPower use: the
// switch's first (on a stack: first unit's) power sourcing equipment.
const PSEGroup = 1

// OIDAdminEnable is POWER-ETHERNET-MIB pethPsePortAdminEnable
// (TruthValue: 1 true = power on, 2 false = power off); a port's instance
// is OIDAdminEnable.<PSEGroup>.<port>.
const OIDAdminEnable = ".1.3.6.1.2.1.105.1.1.1.3"

// How SetPower reads its SET back: a switch may apply it a moment later.
const (
	confirmReads    = 5
	confirmInterval = 100 * time.Millisecond
)

const (
	truthTrue  = 1
	truthFalse = 2
)

// SetPower turns the PoE power of port on or off (pethPsePortAdminEnable
// := 1 or 2) and reads it back, returning nil only once the switch reads
// the value that was set. It reads up to 5 times, 100 ms apart, before it
// gives up with ErrNotConfirmed. Setting a port to the state it already
// has is not an error (and is still a SET). Errors wrap ErrNoAnswer,
// ErrReadOnly, ErrV3Auth, ErrNoSuchPort, ErrWrongType, ErrRefused or
// ErrNotConfirmed, or the context's error.
func SetPower(ctx context.Context, t Target, port int, on bool) error {
	if port < 1 {
		return fmt.Errorf("switch %s: port %d: %w (ports count from 1)", t.addr(), port, ErrNoSuchPort)
	}
	s, err := connect(ctx, t)
	if err != nil {
		return err
	}
	defer s.close()
	op := fmt.Sprintf("set port %d power %s", port, onOff(on))
	v := truthFalse
	if on {
		v = truthTrue
	}
	res, err := s.g.Set([]gosnmp.SnmpPDU{{Name: adminOID(port), Type: gosnmp.Integer, Value: v}})
	if err != nil {
		return s.fail(op, err)
	}
	if err := s.answer(op, res); err != nil {
		return err
	}
	if res.Error != gosnmp.NoError {
		switch res.Error {
		case gosnmp.NotWritable, gosnmp.NoCreation, gosnmp.NoSuchName, gosnmp.InconsistentName:
			// Agents answer these for a port that does not exist, too.
			if _, gerr := s.get(port); errors.Is(gerr, ErrNoSuchPort) {
				return gerr
			}
		}
		return s.status(op, res.Error, true)
	}
	for i := 1; ; i++ {
		got, err := s.get(port)
		if err != nil {
			return err
		}
		if got == on {
			return nil
		}
		if i == confirmReads {
			return fmt.Errorf("switch %s: %s: %w (it still reads %s after %d reads)", t.addr(), op, ErrNotConfirmed, onOff(got), confirmReads)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("switch %s: %s: %w", t.addr(), op, ctx.Err())
		case <-time.After(confirmInterval):
		}
	}
}

// GetPower reports whether the PoE power of port is enabled
// (pethPsePortAdminEnable is 1, true). Errors wrap ErrNoAnswer, ErrV3Auth,
// ErrNoSuchPort, ErrWrongType or ErrRefused, or the context's error.
func GetPower(ctx context.Context, t Target, port int) (on bool, err error) {
	if port < 1 {
		return false, fmt.Errorf("switch %s: port %d: %w (ports count from 1)", t.addr(), port, ErrNoSuchPort)
	}
	s, err := connect(ctx, t)
	if err != nil {
		return false, err
	}
	defer s.close()
	return s.get(port)
}

// get reads one port's pethPsePortAdminEnable.
func (s *session) get(port int) (bool, error) {
	op := fmt.Sprintf("read port %d power", port)
	addr := s.t.addr()
	res, err := s.g.Get([]string{adminOID(port)})
	if err != nil {
		return false, s.fail(op, err)
	}
	if err := s.answer(op, res); err != nil {
		return false, err
	}
	if res.Error == gosnmp.NoSuchName {
		return false, fmt.Errorf("switch %s: %w %d (pethPsePortAdminEnable.%d.%d does not exist)", addr, ErrNoSuchPort, port, PSEGroup, port)
	}
	if res.Error != gosnmp.NoError {
		return false, s.status(op, res.Error, false)
	}
	if len(res.Variables) != 1 {
		return false, fmt.Errorf("switch %s: %s: %w (%d values in the answer, want 1)", addr, op, ErrRefused, len(res.Variables))
	}
	pdu := res.Variables[0]
	switch pdu.Type {
	case gosnmp.NoSuchInstance:
		return false, fmt.Errorf("switch %s: %w %d (pethPsePortAdminEnable.%d.%d does not exist)", addr, ErrNoSuchPort, port, PSEGroup, port)
	case gosnmp.NoSuchObject, gosnmp.EndOfMibView:
		return false, fmt.Errorf("switch %s: %w %d (the switch has no POWER-ETHERNET-MIB pethPsePortAdminEnable)", addr, ErrNoSuchPort, port)
	case gosnmp.Integer:
		switch gosnmp.ToBigInt(pdu.Value).Int64() {
		case truthTrue:
			return true, nil
		case truthFalse:
			return false, nil
		}
		return false, fmt.Errorf("switch %s: %s: pethPsePortAdminEnable.%d.%d = %v, want 1 (true) or 2 (false): %w",
			addr, op, PSEGroup, port, pdu.Value, ErrWrongType)
	}
	return false, fmt.Errorf("switch %s: %s: pethPsePortAdminEnable.%d.%d is %v, want Integer: %w", addr, op, PSEGroup, port, pdu.Type, ErrWrongType)
}

func adminOID(port int) string { return fmt.Sprintf("%s.%d.%d", OIDAdminEnable, PSEGroup, port) }

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
