// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// rpiBoot is option 43 as dnsmasq sends it for
// --pxe-service=x86PC,"Raspberry Pi Boot": PXE sub-options 6 (discovery
// control = 3), 10 (menu prompt: timeout 0, "PXE"), 9 (boot menu: type 0,
// "Raspberry Pi Boot") and 255 (end).
var rpiBoot = []byte{
	6, 1, 3,
	10, 4, 0, 'P', 'X', 'E',
	9, 20, 0, 0, 17, 'R', 'a', 's', 'p', 'b', 'e', 'r', 'r', 'y', ' ', 'P', 'i', ' ', 'B', 'o', 'o', 't',
	255,
}

// RaspberryPiBootOption returns a copy of the option 43 value sent to
// Raspberry Pi bootloaders:
// 0601030a0400505845091400001152617370626572727920506920426f6f74ff.
func RaspberryPiBootOption() []byte { return bytes.Clone(rpiBoot) }

// raspberryPiOUIs are the OUIs of Raspberry Pi Ltd and Raspberry Pi
// Trading.
var raspberryPiOUIs = [][3]byte{
	{0xb8, 0x27, 0xeb}, {0xdc, 0xa6, 0x32}, {0xe4, 0x5f, 0x01},
	{0xd8, 0x3a, 0xdd}, {0x28, 0xcd, 0xc1}, {0x2c, 0xcf, 0x67},
}

// IsRaspberryPiOUI reports whether mac belongs to a Raspberry Pi OUI.
func IsRaspberryPiOUI(mac net.HardwareAddr) bool {
	if len(mac) < 3 {
		return false
	}
	for _, o := range raspberryPiOUIs {
		if mac[0] == o[0] && mac[1] == o[1] && mac[2] == o[2] {
			return true
		}
	}
	return false
}

var (
	pxeClient = []byte("PXEClient")
	ipxe      = []byte("iPXE")
)

// wantsRaspberryPiBoot applies the option 43 rule of the package comment
// to a request's MAC and options.
func wantsRaspberryPiBoot(mac net.HardwareAddr, o dhcpv4.Options) bool {
	if o.Has(dhcpv4.OptionEtherboot) || bytes.Contains(o.Get(dhcpv4.OptionUserClassInformation), ipxe) {
		return false
	}
	vc := o.Get(dhcpv4.OptionClassIdentifier)
	if !bytes.HasPrefix(vc, pxeClient) {
		return false
	}
	return IsRaspberryPiOUI(mac) || clientArch(vc, o) == 0
}

// clientArch is the client architecture from option 93, else from the
// vendor class ("PXEClient:Arch:00007:..."), else 0.
func clientArch(vc []byte, o dhcpv4.Options) int {
	if a := o.Get(dhcpv4.OptionClientSystemArchitectureType); len(a) >= 2 {
		return int(binary.BigEndian.Uint16(a))
	}
	const tag = "PXEClient:Arch:"
	if len(vc) >= len(tag)+5 && string(vc[:len(tag)]) == tag {
		if n, err := strconv.Atoi(string(vc[len(tag) : len(tag)+5])); err == nil {
			return n
		}
		return -1
	}
	return 0
}

// replyConsts are the option values that are the same in every reply,
// encoded once.
type replyConsts struct {
	serverID, mask, bcast, router []byte
	lease, t1, t2                 []byte
	tftp, boot                    []byte
	serverIP                      net.IP
}

func newReplyConsts(o *Options) replyConsts {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	secs := uint32(o.LeaseTime / time.Second)
	sub := o.Subnet.IP.To4()
	mask := o.Subnet.Mask[len(o.Subnet.Mask)-4:] // defaults checked it is IPv4
	bcast := make([]byte, 4)
	for i := range bcast {
		bcast[i] = sub[i]&mask[i] | ^mask[i]
	}
	c := replyConsts{
		serverID: bytes.Clone(o.ServerIP.To4()),
		mask:     bytes.Clone(mask),
		bcast:    bcast,
		lease:    u32(secs),
		t1:       u32(secs / 2),
		t2:       u32(uint32(uint64(secs) * 7 / 8)),
		tftp:     []byte(o.ServerIP.String()),
		boot:     []byte(o.BootFile),
		serverIP: o.ServerIP.To4(),
	}
	if o.Router != nil {
		c.router = bytes.Clone(o.Router.To4())
	}
	return c
}

// response is what handle decided for one request.
type response struct {
	// msg is the encoded reply; nil stays silent.
	msg []byte
	// to is where msg goes.
	to netip.AddrPort
	// persist: lease must be appended to the lease file before msg is
	// sent (an ACK), or on its own (a release, msg nil).
	persist bool
	lease   Lease
}

var (
	bcast68 = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpv4.ClientPort)
	nakMsg  = []byte("requested address is not the one declared for this client")
)

// handle turns one request datagram from peer into a response. It never
// panics on any input, updates the in-memory lease table, calls
// OnContact/OnUnknown, and does no I/O; deliver acts on its result.
func (s *Server) handle(req []byte, peer netip.AddrPort) response {
	m, err := dhcpv4.FromBytes(req)
	if err != nil {
		if s.debug {
			s.log.V(1).Info("ignored malformed packet", "from", peer.String(), "err", err.Error())
		}
		return response{}
	}
	if m.OpCode != dhcpv4.OpcodeBootRequest || m.HWType != iana.HWTypeEthernet || len(m.ClientHWAddr) != 6 {
		return response{}
	}
	mt := m.MessageType()
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeDecline,
		dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeInform:
	default:
		return response{}
	}
	mac := m.ClientHWAddr
	node, ok := s.o.Lookup(mac)
	ip := node.IP.To4()
	if !ok || ip == nil {
		if s.o.OnUnknown != nil {
			s.o.OnUnknown(mac, string(m.Options.Get(dhcpv4.OptionClassIdentifier)))
		}
		if s.debug {
			s.log.V(1).Info("ignored undeclared client", "type", mt.String(), "mac", mac.String(),
				"vendorClass", strconv.Quote(m.ClassIdentifier()))
		}
		return response{}
	}
	node.MAC, node.IP = mac, ip
	if s.o.OnContact != nil {
		s.o.OnContact(node, mt.String())
	}
	if sid := m.Options.Get(dhcpv4.OptionServerIdentifier); sid != nil && !bytes.Equal(sid, s.serverID[:]) &&
		mt != dhcpv4.MessageTypeDiscover && mt != dhcpv4.MessageTypeInform {
		if s.debug {
			s.log.V(1).Info("ignored message for another server", "type", mt.String(), "mac", mac.String(),
				"serverID", net.IP(sid).String())
		}
		return response{}
	}

	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return s.answer(m, dhcpv4.MessageTypeOffer, node, peer)
	case dhcpv4.MessageTypeRequest:
		want := m.RequestedIPAddress()
		if want == nil && !m.ClientIPAddr.IsUnspecified() {
			want = m.ClientIPAddr
		}
		if !ip.Equal(want) {
			if s.debug {
				s.log.V(1).Info("NAK", "mac", mac.String(), "name", node.Name, "requested", want.String(), "declared", ip.String())
			}
			return s.nak(m, peer)
		}
		r := s.answer(m, dhcpv4.MessageTypeAck, node, peer)
		r.persist = true
		r.lease = Lease{MAC: mac, IP: ip, Name: node.Name, Expires: time.Unix(time.Now().Unix()+int64(s.o.LeaseTime/time.Second), 0)}
		s.mu.Lock()
		s.leases[[6]byte(mac)] = r.lease
		s.mu.Unlock()
		return r
	case dhcpv4.MessageTypeInform:
		return s.answer(m, dhcpv4.MessageTypeAck, node, peer)
	default: // RELEASE, DECLINE
		addr := m.ClientIPAddr
		if mt == dhcpv4.MessageTypeDecline {
			addr = m.RequestedIPAddress()
		}
		if !ip.Equal(addr) {
			return response{}
		}
		if mt == dhcpv4.MessageTypeDecline {
			s.log.Info("client declined its address: another host may be using it", "mac", mac.String(), "name", node.Name, "ip", ip.String())
		}
		s.mu.Lock()
		_, had := s.leases[[6]byte(mac)]
		delete(s.leases, [6]byte(mac))
		s.mu.Unlock()
		if s.debug {
			s.log.V(1).Info("lease released", "type", mt.String(), "mac", mac.String(), "name", node.Name, "ip", ip.String())
		}
		return response{persist: had, lease: Lease{MAC: mac, IP: ip, Name: node.Name}}
	}
}

// answer builds an OFFER or ACK (for REQUEST or, without address and lease
// times, for INFORM).
func (s *Server) answer(m *dhcpv4.DHCPv4, mt dhcpv4.MessageType, node Node, peer netip.AddrPort) response {
	c := &s.consts
	inform := m.MessageType() == dhcpv4.MessageTypeInform
	yiaddr, ciaddr := node.IP, net.IP(nil)
	switch {
	case inform:
		yiaddr, ciaddr = nil, m.ClientIPAddr
	case mt == dhcpv4.MessageTypeAck:
		ciaddr = m.ClientIPAddr
	}
	w := newReply(m, m.Flags, ciaddr, yiaddr, c.serverIP, s.o.BootFile)
	w.option(dhcpv4.OptionDHCPMessageType, byte(mt))
	w.option(dhcpv4.OptionServerIdentifier, c.serverID...)
	if !inform {
		w.option(dhcpv4.OptionIPAddressLeaseTime, c.lease...)
		w.option(dhcpv4.OptionRenewTimeValue, c.t1...)
		w.option(dhcpv4.OptionRebindingTimeValue, c.t2...)
	}
	w.option(dhcpv4.OptionSubnetMask, c.mask...)
	w.option(dhcpv4.OptionBroadcastAddress, c.bcast...)
	if c.router != nil {
		w.option(dhcpv4.OptionRouter, c.router...)
	}
	if node.Name != "" && m.IsOptionRequested(dhcpv4.OptionHostName) {
		w.stringOption(dhcpv4.OptionHostName, node.Name)
	}
	w.option(dhcpv4.OptionTFTPServerName, c.tftp...)
	w.option(dhcpv4.OptionBootfileName, c.boot...)
	rpi := false
	if bytes.HasPrefix(m.Options.Get(dhcpv4.OptionClassIdentifier), pxeClient) {
		w.option(dhcpv4.OptionClassIdentifier, pxeClient...)
		if v := m.Options.Get(dhcpv4.OptionClientMachineIdentifier); v != nil {
			w.option(dhcpv4.OptionClientMachineIdentifier, v...)
		}
		if rpi = wantsRaspberryPiBoot(m.ClientHWAddr, m.Options); rpi {
			w.option(dhcpv4.OptionVendorSpecificInformation, rpiBoot...)
		}
	}
	w.relayOptions(m)
	if s.debug {
		s.log.V(1).Info("answered", "type", mt.String(), "request", m.MessageType().String(), "mac", m.ClientHWAddr.String(),
			"name", node.Name, "ip", node.IP.String(), "raspberryPiBoot", rpi)
	}
	return response{msg: w.finish(), to: s.destination(m, peer, false)}
}

// nak builds a DHCPNAK for m.
func (s *Server) nak(m *dhcpv4.DHCPv4, peer netip.AddrPort) response {
	flags := m.Flags
	if !m.GatewayIPAddr.IsUnspecified() {
		flags |= 0x8000 // RFC 2131 4.3.2: the relay broadcasts a NAK
	}
	w := newReply(m, flags, nil, nil, nil, "")
	w.option(dhcpv4.OptionDHCPMessageType, byte(dhcpv4.MessageTypeNak))
	w.option(dhcpv4.OptionServerIdentifier, s.consts.serverID...)
	w.option(dhcpv4.OptionMessage, nakMsg...)
	w.relayOptions(m)
	return response{msg: w.finish(), to: s.destination(m, peer, true)}
}

// replyWriter encodes a BOOTREPLY. dhcpv4.DHCPv4.ToBytes would sort the
// options by code; this writes them in the order given, with the message
// type first as dnsmasq and ISC dhcpd do, because some embedded clients
// look for it there.
type replyWriter struct{ b []byte }

const (
	headerLen  = 236 // fixed BOOTP fields, before the magic cookie
	bootpMin   = 300 // RFC 951 message size; shorter replies are padded
	optionsOff = headerLen + 4
)

var magicCookie = [4]byte{99, 130, 83, 99}

// newReply starts a reply to m with the given header fields (nil: zero).
func newReply(m *dhcpv4.DHCPv4, flags uint16, ciaddr, yiaddr, siaddr net.IP, file string) *replyWriter {
	b := make([]byte, optionsOff, 576)
	b[0] = byte(dhcpv4.OpcodeBootReply)
	b[1] = byte(m.HWType)
	b[2] = byte(len(m.ClientHWAddr))
	copy(b[4:8], m.TransactionID[:])
	binary.BigEndian.PutUint16(b[10:12], flags)
	copy(b[12:16], ciaddr.To4())
	copy(b[16:20], yiaddr.To4())
	copy(b[20:24], siaddr.To4())
	copy(b[24:28], m.GatewayIPAddr.To4())
	copy(b[28:44], m.ClientHWAddr)
	copy(b[108:235], file) // 128-byte file field, NUL-terminated
	copy(b[headerLen:], magicCookie[:])
	return &replyWriter{b: b}
}

// option appends one option, split into several of at most 255 bytes when
// longer (RFC 3396).
func (w *replyWriter) option(code dhcpv4.OptionCode, v ...byte) {
	for {
		n := min(len(v), 255)
		w.b = append(w.b, code.Code(), byte(n))
		w.b = append(w.b, v[:n]...)
		v = v[n:]
		if len(v) == 0 {
			return
		}
	}
}

func (w *replyWriter) stringOption(code dhcpv4.OptionCode, v string) {
	w.option(code, []byte(v)...)
}

// relayOptions copies the client identifier (RFC 6842) and, for relayed
// requests, the relay agent information (RFC 3046, always last).
func (w *replyWriter) relayOptions(m *dhcpv4.DHCPv4) {
	if v := m.Options.Get(dhcpv4.OptionClientIdentifier); v != nil {
		w.option(dhcpv4.OptionClientIdentifier, v...)
	}
	if m.GatewayIPAddr.IsUnspecified() {
		return
	}
	if v := m.Options.Get(dhcpv4.OptionRelayAgentInformation); v != nil {
		w.option(dhcpv4.OptionRelayAgentInformation, v...)
	}
}

// finish appends the end option and pads to the BOOTP minimum.
func (w *replyWriter) finish() []byte {
	w.b = append(w.b, byte(dhcpv4.OptionEnd))
	for len(w.b) < bootpMin {
		w.b = append(w.b, 0)
	}
	return w.b
}

// destination picks where a reply to m goes (RFC 2131 4.1): to the relay
// when there is one, to a configured client (ciaddr) by unicast unless it
// is a NAK, else by broadcast. Unicast to yiaddr would need an ARP entry
// the client cannot answer yet; every client accepts the broadcast.
func (s *Server) destination(m *dhcpv4.DHCPv4, peer netip.AddrPort, nak bool) netip.AddrPort {
	if g, ok := netip.AddrFromSlice(m.GatewayIPAddr.To4()); ok && !g.IsUnspecified() {
		if peer.Addr().Unmap() == g && peer.Port() != 0 {
			return peer
		}
		return netip.AddrPortFrom(g, dhcpv4.ServerPort)
	}
	if c, ok := netip.AddrFromSlice(m.ClientIPAddr.To4()); ok && !c.IsUnspecified() && !nak {
		return netip.AddrPortFrom(c, dhcpv4.ClientPort)
	}
	return bcast68
}
