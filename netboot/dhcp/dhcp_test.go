// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/reconciled/reconciled/kvlog"
)

const (
	rpiMAC     = "dc:a6:32:01:02:03"
	testMAC    = "02:00:00:77:00:10" // netnstest.ClientMAC(0): not a Raspberry Pi OUI
	unknownMAC = "02:00:00:77:00:99"
	pxeVendor  = "PXEClient:Arch:00000:UNDI:002001"
)

var testNodes = map[string]Node{
	rpiMAC:  {IP: net.IPv4(10, 77, 0, 10), Name: "pi-10"},
	testMAC: {IP: net.IPv4(10, 77, 0, 20), Name: "pi-20"},
}

func mapLookup(nodes map[string]Node) Lookup {
	return func(mac net.HardwareAddr) (Node, bool) {
		n, ok := nodes[mac.String()]
		return n, ok
	}
}

func testOptions(t testing.TB) Options {
	_, subnet, _ := net.ParseCIDR("10.77.0.0/24")
	return Options{
		ServerIP: net.IPv4(10, 77, 0, 1),
		Subnet:   subnet,
		Router:   net.IPv4(10, 77, 0, 1),
		Lookup:   mapLookup(testNodes),
		Log:      testr.NewWithInterface(t, testr.Options{Verbosity: 1}),
	}
}

func newTestServer(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pxe adds what a Raspberry Pi bootloader (and udhcpc-pxe.sh) sends.
func pxe(vendor string, arch uint16) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vendor)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{byte(arch >> 8), byte(arch)}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, machineID),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionVendorSpecificInformation, dhcpv4.OptionClassIdentifier,
			dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName, dhcpv4.OptionClientMachineIdentifier),
	}
}

var machineID = []byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

func request(t testing.TB, mt dhcpv4.MessageType, mac string, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(hw),
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.ToBytes()
}

// summary is what the tests compare of a reply.
type summary struct {
	YourIP, ClientIP, NextServer, Gateway, File string
	Broadcast                                   bool
	To                                          string
	Options                                     map[uint8]string // hex, or text for 12/66/67/60
}

func summarize(t testing.TB, r response) *summary {
	t.Helper()
	if r.msg == nil {
		return nil
	}
	m, err := dhcpv4.FromBytes(r.msg)
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != (dhcpv4.TransactionID{1, 2, 3, 4}) {
		t.Errorf("reply op %v xid %v", m.OpCode, m.TransactionID)
	}
	s := &summary{
		YourIP: m.YourIPAddr.String(), ClientIP: m.ClientIPAddr.String(), NextServer: m.ServerIPAddr.String(),
		Gateway: m.GatewayIPAddr.String(), File: m.BootFileName, Broadcast: m.IsBroadcast(), To: r.to.String(),
		Options: map[uint8]string{},
	}
	for code, v := range m.Options {
		switch code {
		case 12, 56, 60, 66, 67:
			s.Options[code] = string(v)
		default:
			s.Options[code] = hex.EncodeToString(v)
		}
	}
	return s
}

// offerOptions are the options of every OFFER from testOptions.
func offerOptions(extra map[uint8]string) map[uint8]string {
	o := map[uint8]string{
		53: "02", 54: "0a4d0001", 1: "ffffff00", 28: "0a4d00ff", 3: "0a4d0001",
		51: "00000e10", 58: "00000708", 59: "00000c4e", 66: "10.77.0.1", 67: "bootcode.bin",
	}
	for k, v := range extra {
		if v == "" {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	return o
}

const rpiBootHex = "0601030a0400505845091400001152617370626572727920506920426f6f74ff"

var pxeReply = map[uint8]string{60: "PXEClient", 97: hex.EncodeToString(machineID)}

func with(a, b map[uint8]string) map[uint8]string {
	o := map[uint8]string{}
	for k, v := range a {
		o[k] = v
	}
	for k, v := range b {
		o[k] = v
	}
	return o
}

func TestRaspberryPiBootOptionMatchesDnsmasq(t *testing.T) {
	if got := hex.EncodeToString(RaspberryPiBootOption()); got != rpiBootHex {
		t.Errorf("option 43 = %s, want %s (what dnsmasq sends for pxe-service x86PC \"Raspberry Pi Boot\")", got, rpiBootHex)
	}
}

func TestMessageTypeComesFirst(t *testing.T) {
	s := newTestServer(t, testOptions(t))
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
		r := s.handle(request(t, mt, rpiMAC, append(pxe(pxeVendor, 0), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.77.0.99"))))...),
			netip.MustParseAddrPort("0.0.0.0:68"))
		if len(r.msg) < 300 || r.msg[240] != 53 || r.msg[241] != 1 || r.msg[243] != 54 {
			t.Errorf("reply to %v: options start % x, want 53 (message type), then 54 (server identifier)", mt, r.msg[240:246])
		}
	}
}

func TestOffer(t *testing.T) {
	peer := netip.MustParseAddrPort("0.0.0.0:68")
	tests := map[string]struct {
		mac  string
		mods []dhcpv4.Modifier
		want map[uint8]string // nil: no answer
		ip   string
	}{
		"raspberry pi bootloader": {
			mac: rpiMAC, mods: pxe(pxeVendor, 0), ip: "10.77.0.10",
			want: offerOptions(with(pxeReply, map[uint8]string{43: rpiBootHex})),
		},
		"arch 0 PXE client with a declared non-Pi MAC": {
			mac: testMAC, mods: pxe(pxeVendor, 0), ip: "10.77.0.20",
			want: offerOptions(with(pxeReply, map[uint8]string{43: rpiBootHex})),
		},
		"vendor class without option 93": {
			mac: testMAC, ip: "10.77.0.20",
			mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier(pxeVendor))},
			// No parameter request list: every option, hostname included.
			want: offerOptions(map[uint8]string{60: "PXEClient", 43: rpiBootHex, 12: "pi-20"}),
		},
		"iPXE user class": {
			mac: testMAC, ip: "10.77.0.20",
			mods: append(pxe(pxeVendor, 0), dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE"))),
			want: offerOptions(pxeReply),
		},
		"iPXE user class on a Pi OUI": {
			mac: rpiMAC, ip: "10.77.0.10",
			mods: append(pxe(pxeVendor, 0), dhcpv4.WithUserClass("iPXE", true)),
			want: offerOptions(pxeReply),
		},
		"iPXE option 175": {
			mac: testMAC, ip: "10.77.0.20",
			mods: append(pxe(pxeVendor, 0), dhcpv4.WithGeneric(dhcpv4.OptionEtherboot, []byte{0xb1, 1, 1})),
			want: offerOptions(pxeReply),
		},
		"x86-64 UEFI": {
			mac: testMAC, ip: "10.77.0.20",
			mods: pxe("PXEClient:Arch:00007:UNDI:003016", 7),
			want: offerOptions(pxeReply),
		},
		"x86-64 UEFI arch only in the vendor class": {
			mac: testMAC, ip: "10.77.0.20",
			mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016"))},
			want: offerOptions(map[uint8]string{60: "PXEClient", 12: "pi-20"}),
		},
		"ARM64 UEFI on a Pi OUI": {
			mac: rpiMAC, ip: "10.77.0.10",
			mods: pxe("PXEClient:Arch:00011:UNDI:003000", 11),
			want: offerOptions(with(pxeReply, map[uint8]string{43: rpiBootHex})),
		},
		"operating system client on a Pi": {
			mac: rpiMAC, ip: "10.77.0.10",
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("dhcpcd-10.0.6:Linux-6.6:aarch64:BCM2835")),
				dhcpv4.WithRequestedOptions(dhcpv4.OptionHostName, dhcpv4.OptionRouter),
			},
			want: offerOptions(map[uint8]string{12: "pi-10"}),
		},
		"no router configured": {
			mac: rpiMAC, ip: "10.77.0.10",
			want: offerOptions(map[uint8]string{3: "", 12: "pi-10"}),
		},
		"undeclared MAC": {mac: unknownMAC, mods: pxe(pxeVendor, 0)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := testOptions(t)
			if name == "no router configured" {
				o.Router = nil
			}
			var unknown []string
			o.OnUnknown = func(mac net.HardwareAddr, vc string) { unknown = append(unknown, mac.String()+" "+vc) }
			s := newTestServer(t, o)
			got := summarize(t, s.handle(request(t, dhcpv4.MessageTypeDiscover, tc.mac, tc.mods...), peer))
			if tc.want == nil {
				if got != nil {
					t.Fatalf("answered an undeclared MAC: %+v", got)
				}
				if diff := cmp.Diff([]string{unknownMAC + " " + pxeVendor}, unknown); diff != "" {
					t.Errorf("OnUnknown (-want +got):\n%s", diff)
				}
				return
			}
			want := &summary{
				YourIP: tc.ip, ClientIP: "0.0.0.0", NextServer: "10.77.0.1", Gateway: "0.0.0.0", File: "bootcode.bin",
				To: "255.255.255.255:68", Options: tc.want,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("OFFER (-want +got):\n%s", diff)
			}
			if len(unknown) != 0 {
				t.Errorf("OnUnknown called for a declared MAC: %v", unknown)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	bcast := netip.MustParseAddrPort("0.0.0.0:68")
	sid := func(ip string) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip)))
	}
	reqIP := func(ip string) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
	}
	ack := func(extra map[uint8]string) map[uint8]string {
		return offerOptions(with(map[uint8]string{53: "05", 12: "pi-10"}, extra))
	}
	nak := map[uint8]string{53: "06", 54: "0a4d0001", 56: string(nakMsg)}
	tests := map[string]struct {
		mods []dhcpv4.Modifier
		peer netip.AddrPort
		want *summary
	}{
		"selecting": {
			mods: []dhcpv4.Modifier{sid("10.77.0.1"), reqIP("10.77.0.10")},
			want: &summary{YourIP: "10.77.0.10", ClientIP: "0.0.0.0", To: "255.255.255.255:68", Options: ack(nil)},
		},
		"selecting, PXE": {
			mods: append(pxe(pxeVendor, 0), sid("10.77.0.1"), reqIP("10.77.0.10")),
			want: &summary{YourIP: "10.77.0.10", ClientIP: "0.0.0.0", To: "255.255.255.255:68",
				Options: ack(with(pxeReply, map[uint8]string{43: rpiBootHex, 12: ""}))},
		},
		"init-reboot": {
			mods: []dhcpv4.Modifier{reqIP("10.77.0.10"), dhcpv4.WithBroadcast(true)},
			want: &summary{YourIP: "10.77.0.10", ClientIP: "0.0.0.0", Broadcast: true, To: "255.255.255.255:68", Options: ack(nil)},
		},
		"renewing is unicast": {
			mods: []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("10.77.0.10"))},
			peer: netip.MustParseAddrPort("10.77.0.10:68"),
			want: &summary{YourIP: "10.77.0.10", ClientIP: "10.77.0.10", To: "10.77.0.10:68", Options: ack(nil)},
		},
		"wrong address": {
			mods: []dhcpv4.Modifier{reqIP("10.77.0.99")},
			want: &summary{YourIP: "0.0.0.0", ClientIP: "0.0.0.0", NextServer: "0.0.0.0", To: "255.255.255.255:68", Options: nak},
		},
		"renewing a wrong address": {
			mods: []dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("10.77.0.99"))},
			peer: netip.MustParseAddrPort("10.77.0.99:68"),
			want: &summary{YourIP: "0.0.0.0", ClientIP: "0.0.0.0", NextServer: "0.0.0.0", To: "255.255.255.255:68", Options: nak},
		},
		"no address at all": {
			want: &summary{YourIP: "0.0.0.0", ClientIP: "0.0.0.0", NextServer: "0.0.0.0", To: "255.255.255.255:68", Options: nak},
		},
		"another server's offer": {
			mods: []dhcpv4.Modifier{sid("10.77.0.254"), reqIP("10.77.0.99")},
		},
		"relayed": {
			mods: []dhcpv4.Modifier{sid("10.77.0.1"), reqIP("10.77.0.10"), dhcpv4.WithRelay(net.ParseIP("10.77.0.2")),
				dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 3, 'p', '1', '0'})},
			peer: netip.MustParseAddrPort("10.77.0.2:67"),
			want: &summary{YourIP: "10.77.0.10", ClientIP: "0.0.0.0", Gateway: "10.77.0.2", To: "10.77.0.2:67",
				Options: ack(map[uint8]string{82: "0103703130"})},
		},
		"relayed NAK is broadcast by the relay": {
			mods: []dhcpv4.Modifier{reqIP("10.77.0.99"), dhcpv4.WithRelay(net.ParseIP("10.77.0.2"))},
			peer: netip.MustParseAddrPort("10.77.0.2:2067"),
			want: &summary{YourIP: "0.0.0.0", ClientIP: "0.0.0.0", NextServer: "0.0.0.0", Gateway: "10.77.0.2", Broadcast: true,
				To: "10.77.0.2:2067", Options: nak},
		},
		"client identifier is echoed": {
			mods: []dhcpv4.Modifier{reqIP("10.77.0.10"), dhcpv4.WithGeneric(dhcpv4.OptionClientIdentifier, []byte{1, 0xdc, 0xa6, 0x32, 1, 2, 3})},
			want: &summary{YourIP: "10.77.0.10", ClientIP: "0.0.0.0", To: "255.255.255.255:68",
				Options: ack(map[uint8]string{61: "01dca632010203"})},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, testOptions(t))
			peer := tc.peer
			if !peer.IsValid() {
				peer = bcast
			}
			r := s.handle(request(t, dhcpv4.MessageTypeRequest, rpiMAC, tc.mods...), peer)
			got := summarize(t, r)
			if tc.want != nil {
				if tc.want.Options[53] != "06" {
					tc.want.NextServer, tc.want.File = "10.77.0.1", "bootcode.bin"
				}
				if tc.want.Gateway == "" {
					tc.want.Gateway = "0.0.0.0"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			acked := tc.want != nil && tc.want.Options[53] == "05"
			if r.persist != acked || len(s.Leases()) != map[bool]int{true: 1}[acked] {
				t.Errorf("persist = %v, leases %v; want a lease only after an ACK", r.persist, s.Leases())
			}
		})
	}
}

func TestInformReleaseDecline(t *testing.T) {
	s := newTestServer(t, testOptions(t))
	peer := netip.MustParseAddrPort("10.77.0.10:68")
	ci := dhcpv4.WithClientIP(net.ParseIP("10.77.0.10"))

	got := summarize(t, s.handle(request(t, dhcpv4.MessageTypeInform, rpiMAC, ci), peer))
	want := &summary{YourIP: "0.0.0.0", ClientIP: "10.77.0.10", NextServer: "10.77.0.1", Gateway: "0.0.0.0", File: "bootcode.bin",
		To: "10.77.0.10:68", Options: offerOptions(map[uint8]string{53: "05", 51: "", 58: "", 59: "", 12: "pi-10"})}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("INFORM reply (-want +got):\n%s", diff)
	}

	lease := func() {
		t.Helper()
		s.handle(request(t, dhcpv4.MessageTypeRequest, rpiMAC, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.77.0.10")))), peer)
		if len(s.Leases()) != 1 {
			t.Fatalf("no lease after ACK")
		}
	}
	lease()
	sid := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.77.0.1")))
	if r := s.handle(request(t, dhcpv4.MessageTypeRelease, rpiMAC, ci, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.77.0.9")))), peer); r.msg != nil || r.persist || len(s.Leases()) != 1 {
		t.Errorf("RELEASE to another server: %+v, leases %v", r, s.Leases())
	}
	if r := s.handle(request(t, dhcpv4.MessageTypeRelease, rpiMAC, ci, sid), peer); r.msg != nil || !r.persist || len(s.Leases()) != 0 {
		t.Errorf("RELEASE: %+v, leases %v", r, s.Leases())
	}
	lease()
	if r := s.handle(request(t, dhcpv4.MessageTypeDecline, rpiMAC, sid, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.77.0.10")))), peer); r.msg != nil || !r.persist || len(s.Leases()) != 0 {
		t.Errorf("DECLINE: %+v, leases %v", r, s.Leases())
	}
}

func TestCallbacks(t *testing.T) {
	o := testOptions(t)
	var got []string
	o.OnContact = func(n Node, mt string) {
		got = append(got, "contact "+n.Name+" "+n.MAC.String()+" "+n.IP.String()+" "+mt)
	}
	o.OnUnknown = func(mac net.HardwareAddr, vc string) { got = append(got, "unknown "+mac.String()+" "+vc) }
	s := newTestServer(t, o)
	peer := netip.MustParseAddrPort("0.0.0.0:68")
	s.handle(request(t, dhcpv4.MessageTypeDiscover, rpiMAC), peer)
	s.handle(request(t, dhcpv4.MessageTypeRequest, unknownMAC, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("x\ny"))), peer)
	s.handle(request(t, dhcpv4.MessageTypeOffer, unknownMAC), peer) // not a client message
	s.handle([]byte("garbage"), peer)
	want := []string{"contact pi-10 dc:a6:32:01:02:03 10.77.0.10 DISCOVER", "unknown 02:00:00:77:00:99 x\ny"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("callbacks (-want +got):\n%s", diff)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := testOptions(t)
	_, other, _ := net.ParseCIDR("10.78.0.0/24")
	tests := map[string]func(o *Options){
		"no server IP":        func(o *Options) { o.ServerIP = nil },
		"IPv6 server IP":      func(o *Options) { o.ServerIP = net.ParseIP("fd00::1") },
		"no subnet":           func(o *Options) { o.Subnet = nil },
		"server outside":      func(o *Options) { o.Subnet = other },
		"no lookup":           func(o *Options) { o.Lookup = nil },
		"negative lease time": func(o *Options) { o.LeaseTime = -time.Second },
		"port":                func(o *Options) { o.Port = 70000 },
		"boot file too long":  func(o *Options) { o.BootFile = strings.Repeat("a", 128) },
		"IPv6 router":         func(o *Options) { o.Router = net.ParseIP("fd00::1") },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			o := good
			mutate(&o)
			if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("New = %v, want ErrInvalidOptions", err)
			}
		})
	}
}

// capture makes s send its replies to a channel.
func capture(s *Server) <-chan []byte {
	ch := make(chan []byte, 100)
	send := sendFunc(func(pkts []packet) {
		for _, p := range pkts {
			ch <- p.msg
		}
	})
	s.send.Store(&send)
	return ch
}

func TestLeasesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.StateDir = dir
	s := newTestServer(t, o)
	sent := capture(s)
	peer := netip.MustParseAddrPort("0.0.0.0:68")
	for _, mac := range []string{rpiMAC, testMAC} {
		ip := testNodes[mac].IP.String()
		s.deliver(s.handle(request(t, dhcpv4.MessageTypeRequest, mac, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))), peer))
		select {
		case msg := <-sent:
			if m, err := dhcpv4.FromBytes(msg); err != nil || m.MessageType() != dhcpv4.MessageTypeAck {
				t.Fatalf("sent %v %v, want an ACK", m, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no ACK sent after the lease was written")
		}
		// The ACK goes out only once its lease is in the file.
		if !strings.Contains(leaseFile(t, dir), mac) {
			t.Fatalf("ACK sent before the lease was written:\n%s", leaseFile(t, dir))
		}
	}
	// Release one; renew the other.
	s.deliver(s.handle(request(t, dhcpv4.MessageTypeRelease, testMAC, dhcpv4.WithClientIP(net.ParseIP("10.77.0.20"))), peer))
	s.deliver(s.handle(request(t, dhcpv4.MessageTypeRequest, rpiMAC, dhcpv4.WithClientIP(net.ParseIP("10.77.0.10"))), peer))
	want := s.Leases()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A change torn by a crash is skipped.
	f, _ := os.OpenFile(filepath.Join(dir, LeaseFile+".log"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"k":"02:00:00:77:00:10","v":{"ip":"10.77`)
	f.Close()

	s2 := newTestServer(t, o)
	got := s2.Leases()
	if len(want) != 1 || want[0].Name != "pi-10" {
		t.Fatalf("leases before restart: %+v", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("leases after restart (-want +got):\n%s", diff)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	// The restart compacted the file to the live lease.
	if b, _ := os.ReadFile(filepath.Join(dir, LeaseFile)); strings.Count(string(b), `"ip"`) != 1 || !strings.Contains(string(b), rpiMAC) {
		t.Errorf("lease file after compaction:\n%s", b)
	}
}

// leaseFile returns the lease file's snapshot and log.
func leaseFile(t *testing.T, dir string) string {
	t.Helper()
	a, _ := os.ReadFile(filepath.Join(dir, LeaseFile))
	b, _ := os.ReadFile(filepath.Join(dir, LeaseFile+".log"))
	return string(a) + string(b)
}

func TestExpiredLeasesAreDropped(t *testing.T) {
	dir := t.TempDir()
	content := `{"dc:a6:32:01:02:03": {"ip": "10.77.0.10", "name": "pi-10", "expires": 1000},
		"02:00:00:77:00:10": {"ip": "10.77.0.20", "name": "pi 20", "expires": 4102444800},
		"not a mac": {"ip": "10.77.0.30", "expires": 4102444800}}`
	if err := os.WriteFile(filepath.Join(dir, LeaseFile), []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.StateDir = dir
	s := newTestServer(t, o)
	want := []Lease{{MAC: net.HardwareAddr{2, 0, 0, 0x77, 0, 0x10}, IP: net.IP{10, 77, 0, 20}, Name: "pi 20", Expires: time.Unix(4102444800, 0)}}
	if diff := cmp.Diff(want, s.Leases()); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
	s.Close()
	if b := leaseFile(t, dir); strings.Contains(b, "10.77.0.10") || strings.Contains(b, "not a mac") {
		t.Errorf("expired and unreadable leases kept in the file:\n%s", b)
	}
}

// A lease file that does not decode is set aside, not a reason to refuse
// to serve: the leases are fixed per MAC.
func TestCorruptLeaseFileSetAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LeaseFile), []byte("# reconciled dhcp leases v1\n1000 dc:a6"), 0o640); err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.StateDir = dir
	s := newTestServer(t, o)
	if n := len(s.Leases()); n != 0 {
		t.Fatalf("%d leases from a corrupt file", n)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, LeaseFile+".corrupt")); err != nil {
		t.Fatalf("not set aside: %v", err)
	}
}

// TestGroupCommit checks that many ACKs share fsyncs and that each waits
// for its own record.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t)
	o.StateDir = dir
	o.Log = testr.New(t)
	o.Lookup = poolLookup(netip.MustParsePrefix("10.77.0.0/16"))
	o.Subnet = &net.IPNet{IP: net.IP{10, 77, 0, 0}, Mask: net.CIDRMask(16, 32)}
	s := newTestServer(t, o)
	var mu sync.Mutex
	sends := 0
	send := sendFunc(func(pkts []packet) { mu.Lock(); sends += len(pkts); mu.Unlock() })
	s.send.Store(&send)
	const n = 2000
	start := time.Now()
	for i := range n {
		mac := net.HardwareAddr{0x02, 0, byte(i >> 16), byte(i >> 8), byte(i), 1}
		node, _ := o.Lookup(mac)
		s.deliver(s.handle(request(t, dhcpv4.MessageTypeRequest, mac.String(),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(node.IP))), netip.MustParseAddrPort("0.0.0.0:68")))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	kv, err := kvlog.Open[leaseRecord](filepath.Join(dir, LeaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if got := kv.Len(); got != n {
		t.Errorf("lease file has %d leases, want %d", got, n)
	}
	if sends != n {
		t.Errorf("%d ACKs sent, want %d", sends, n)
	}
	if syncs := s.store.syncs(); syncs >= n {
		t.Errorf("%d fsyncs for %d leases: none shared", syncs, n)
	}
	t.Logf("%d leases committed in %v with %d fsyncs", n, time.Since(start), s.store.syncs())
}
