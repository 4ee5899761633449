// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package poe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gosnmp/gosnmp"
)

// BRIDGE-MIB objects Discover walks.
const (
	// OIDFdbPort is dot1dTpFdbPort, indexed by the MAC's six bytes.
	OIDFdbPort = ".1.3.6.1.2.1.17.4.3.1.2"
)

// maxWalkRows bounds one walk, against an agent that never ends it.
const maxWalkRows = 100000

// FDBEntry is one row of a switch's forwarding table: MAC was seen on Port.
type FDBEntry struct {
	// MAC is the learned address (6 bytes).
	MAC net.HardwareAddr
	// Port is the bridge port (dot1dTpFdbPort). On most switches it is the
	// front-panel port number, which POWER-ETHERNET-MIB uses too.
	Port int
}

// Discover reads the switch's MAC-to-port table (BRIDGE-MIB
// dot1dTpFdbPort), sorted by port and then MAC. Rows with port 0 (the
// switch's own addresses) and malformed rows are left out. An empty table
// is no error: the result is empty. Errors wrap ErrNoAnswer, ErrV3Auth or
// ErrRefused, or the context's error.
//
// TODO(pinode): switches that keep their table per VLAN only in
// Q-BRIDGE-MIB dot1qTpFdbPort (1.3.6.1.2.1.17.7.1.2.2.1.2) show an empty
// table here.
func Discover(ctx context.Context, t Target) ([]FDBEntry, error) {
	s, err := connect(ctx, t)
	if err != nil {
		return nil, err
	}
	defer s.close()
	entries := []FDBEntry{}
	err = s.walk("dot1dTpFdbPort", OIDFdbPort, func(suffix []int, pdu gosnmp.SnmpPDU) {
		if len(suffix) != 6 || pdu.Type != gosnmp.Integer {
			return
		}
		mac := make(net.HardwareAddr, 6)
		for i, b := range suffix {
			if b < 0 || b > 255 {
				return
			}
			mac[i] = byte(b)
		}
		if port := gosnmp.ToBigInt(pdu.Value).Int64(); port > 0 && port <= 1<<31 {
			entries = append(entries, FDBEntry{MAC: mac, Port: int(port)})
		}
	})
	if err != nil {
		return nil, err
	}
	sortFDB(entries)
	return entries, nil
}

// PortOf returns the entry for mac, and whether there is one. With the
// same MAC on several ports (it moved) the lowest port wins.
func PortOf(entries []FDBEntry, mac net.HardwareAddr) (FDBEntry, bool) {
	found, ok := FDBEntry{}, false
	for _, e := range entries {
		if bytes.Equal(e.MAC, mac) && (!ok || e.Port < found.Port) {
			found, ok = e, true
		}
	}
	return found, ok
}

// FormatFDB prints entries as a table with the columns MAC and PORT,
// sorted by port and then MAC, like kubectl's tables; entries itself is
// not reordered. With no entries it prints only the header. It returns
// the first write error.
func FormatFDB(w io.Writer, entries []FDBEntry) error {
	sorted := slices.Clone(entries)
	sortFDB(sorted)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "MAC\tPORT")
	for _, e := range sorted {
		fmt.Fprintf(tw, "%s\t%d\n", e.MAC, e.Port)
	}
	return tw.Flush()
}

func sortFDB(entries []FDBEntry) {
	slices.SortStableFunc(entries, func(a, b FDBEntry) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return bytes.Compare(a.MAC, b.MAC)
	})
}

// walk calls fn for every instance under root (GETBULK), in order, with
// the instance's index (the sub-identifiers after root). It ends at the
// end of the subtree and fails when the agent answers an error status or
// does not move forward.
func (s *session) walk(name, root string, fn func(suffix []int, pdu gosnmp.SnmpPDU)) error {
	op := "walk " + name
	addr := s.t.addr()
	rootIDs, err := parseOID(root)
	if err != nil {
		return err
	}
	last, lastIDs, rows := root, rootIDs, 0
	for {
		res, err := s.g.GetBulk([]string{last}, 0, s.g.MaxRepetitions)
		if err != nil {
			return s.fail(op, err)
		}
		if err := s.answer(op, res); err != nil {
			return err
		}
		if res.Error != gosnmp.NoError {
			return s.status(op, res.Error, false)
		}
		if len(res.Variables) == 0 {
			return nil
		}
		for _, pdu := range res.Variables {
			switch pdu.Type {
			case gosnmp.EndOfMibView, gosnmp.NoSuchObject, gosnmp.NoSuchInstance:
				return nil
			}
			ids, err := parseOID(pdu.Name)
			if err != nil {
				return fmt.Errorf("switch %s: %s: %w (bad OID %q in the answer)", addr, op, ErrRefused, pdu.Name)
			}
			if len(ids) <= len(rootIDs) || !slices.Equal(ids[:len(rootIDs)], rootIDs) {
				return nil // past the subtree
			}
			if slices.Compare(ids, lastIDs) <= 0 {
				return fmt.Errorf("switch %s: %s: %w (OID %s does not follow %s)", addr, op, ErrRefused, pdu.Name, last)
			}
			if rows++; rows > maxWalkRows {
				return fmt.Errorf("switch %s: %s: %w (more than %d rows)", addr, op, ErrRefused, maxWalkRows)
			}
			fn(ids[len(rootIDs):], pdu)
			last, lastIDs = pdu.Name, ids
		}
	}
}

// parseOID splits ".1.3.6" into its sub-identifiers.
func parseOID(oid string) ([]int, error) {
	parts := strings.Split(strings.TrimPrefix(oid, "."), ".")
	ids := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad OID %q", oid)
		}
		ids[i] = int(n)
	}
	return ids, nil
}
