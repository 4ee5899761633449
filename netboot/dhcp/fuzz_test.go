// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"net"
	"net/netip"
	"testing"

	"github.com/go-logr/logr"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds arbitrary datagrams to the request handler: it must
// never panic, and whatever it answers must be a well-formed reply.
func FuzzHandle(f *testing.F) {
	sid := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 1)))
	req := dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 10)))
	relay := dhcpv4.WithRelay(net.IPv4(10, 77, 0, 2))
	for _, r := range [][]byte{
		request(f, dhcpv4.MessageTypeDiscover, rpiMAC, pxe(pxeVendor, 0)...),
		request(f, dhcpv4.MessageTypeDiscover, testMAC, append(pxe(pxeVendor, 0), dhcpv4.WithUserClass("iPXE", false))...),
		request(f, dhcpv4.MessageTypeRequest, rpiMAC, sid, req),
		request(f, dhcpv4.MessageTypeRequest, rpiMAC, sid, req, relay, dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 1, 7})),
		request(f, dhcpv4.MessageTypeRequest, rpiMAC, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 99))),
		request(f, dhcpv4.MessageTypeInform, rpiMAC, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 10))),
		request(f, dhcpv4.MessageTypeRelease, rpiMAC, sid, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 10))),
		request(f, dhcpv4.MessageTypeDecline, rpiMAC, sid, req),
		request(f, dhcpv4.MessageTypeDiscover, unknownMAC),
		request(f, dhcpv4.MessageTypeDiscover, testMAC, dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0})),
		request(f, dhcpv4.MessageTypeDiscover, testMAC, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:0000"))),
		{},
		[]byte("\x01\x01\x06\x00"),
	} {
		f.Add(r)
	}
	o := testOptions(f)
	o.Log = logr.Discard()
	o.OnUnknown = func(net.HardwareAddr, string) {}
	o.OnContact = func(Node, string) {}
	s, err := New(o)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	peers := []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:68"), netip.MustParseAddrPort("10.77.0.2:67")}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, peer := range peers {
			r := s.handle(data, peer)
			if r.msg == nil {
				continue
			}
			m, err := dhcpv4.FromBytes(r.msg)
			if err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if m.OpCode != dhcpv4.OpcodeBootReply || !r.to.IsValid() {
				t.Fatalf("bad reply %v to %v", m.OpCode, r.to)
			}
			if mt := m.MessageType(); mt != dhcpv4.MessageTypeOffer && mt != dhcpv4.MessageTypeAck && mt != dhcpv4.MessageTypeNak {
				t.Fatalf("reply of type %v", mt)
			}
		}
	})
}
