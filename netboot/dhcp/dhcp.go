// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package dhcp is the netboot DHCPv4 server: it answers only the MAC
// addresses the caller declares (the PiNodes), each with its fixed IP, and
// tells Raspberry Pi bootloaders where to fetch their boot files.
//
// It uses github.com/insomniacslk/dhcp: dhcpv4 to parse requests, and
// server4.NewIPv4UDPConn for the socket (bound to the interface with
// SO_BINDTODEVICE, broadcast allowed). Replies are encoded here, with the
// options in dnsmasq's order (message type first) rather than sorted by
// code as dhcpv4 would. It runs its own receive loop instead of
// server4.Server.Serve, which allocates a 4 KiB buffer and starts a
// goroutine for every packet: one goroutine reads up to 32 requests per
// recvmmsg, answers them and sends the replies with one sendmmsg.
//
// # Answers
//
// DISCOVER gets an OFFER and REQUEST an ACK with the node's IP, subnet
// mask, broadcast address, router, lease time (and T1 = 1/2, T2 = 7/8 of
// it), server identifier, siaddr (next server) and option 66 = ServerIP,
// the boot file in option 67 and in the header's file field, the
// hostname (option 12 = Node.Name) when the client asks for it, and the
// Raspberry Pi options below. A REQUEST that names another server
// (option 54) is ignored; one that asks for another address than the
// node's gets a NAK. RELEASE forgets the lease; DECLINE forgets it and is
// logged (the address is fixed, there is no other to offer); INFORM gets
// an ACK without address or lease time. MACs that Lookup does not know
// never get an answer, but OnUnknown hears about them.
//
// Replies to a relay (giaddr set) go to the relay's port 67 (or to the
// port the relay sent from); the rest are broadcast to port 68, except
// an ACK to a client that has an address (ciaddr, renewing or INFORM),
// which is unicast to it. Option 82 and option 61 are copied back.
//
// # Raspberry Pi boot options
//
// A Raspberry Pi bootloader accepts an offer only if option 43 contains
// "Raspberry Pi Boot". Option 43 carries PXE boot-menu sub-options that
// break x86 iPXE, so it is sent exactly when the request
//
//  1. carries no iPXE marker: no user class (option 77) containing
//     "iPXE" and no iPXE encapsulated option 175; and
//  2. has a vendor class (option 60) that starts with "PXEClient"; and
//  3. comes from client architecture 0 (option 93, or "Arch:00000" in the
//     vendor class when option 93 is absent), which is what every
//     Raspberry Pi bootloader sends ("PXEClient:Arch:00000:UNDI:002001"),
//     or from a MAC with a Raspberry Pi OUI (b8:27:eb, dc:a6:32,
//     e4:5f:01, d8:3a:dd, 28:cd:c1, 2c:cf:67) whatever its architecture.
//
// So a Pi that is netbooting gets it, the operating system's DHCP client
// afterwards (no "PXEClient") and UEFI or iPXE firmware do not. The
// bytes are those dnsmasq sends for --pxe-service=x86PC,"Raspberry Pi
// Boot" (discovery control 3, menu prompt "PXE", one menu item "Raspberry
// Pi Boot"); see RaspberryPiBootOption. Every reply to a PXEClient also
// carries option 60 "PXEClient" and a copy of option 97, like dnsmasq's.
//
// # Leases
//
// ACKed leases are kept in memory and, when Options.StateDir is set, in
// StateDir/dhcp-leases.json (see LeaseFile). A single writer goroutine
// commits them in groups: it appends every lease queued since its last
// write, calls fsync once for all of them, and only then sends their
// ACKs. Under load one fsync covers hundreds of leases;
// when idle an ACK waits for one write and one fsync. New reads the file
// back, so a restart forgets nothing.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Node is one declared client: its MAC address, the fixed IPv4 address
// it gets, and a name (the PiNode's) used in logs, the lease file and the
// hostname option.
type Node struct {
	// MAC is the node's Ethernet address.
	MAC net.HardwareAddr
	// IP is the IPv4 address the node always gets.
	IP net.IP
	// Name is the PiNode's name; it may be empty.
	Name string
}

// Lookup returns the node declared for mac, or ok false when mac is not
// declared. It is called for every request, from the serving goroutine,
// concurrently with nothing else of the same Server; it must be fast and
// must not block. The mac slice is only valid during the call.
type Lookup func(mac net.HardwareAddr) (node Node, ok bool)

// Default option values.
const (
	// DefaultPort is the DHCP server port.
	DefaultPort = 67
	// DefaultLeaseTime is the lease time when Options.LeaseTime is zero.
	DefaultLeaseTime = time.Hour
	// DefaultBootFile is the boot file name (option 67 and the file
	// field) when Options.BootFile is empty. Raspberry Pi 4 and 5
	// bootloaders ignore it and ask TFTP for start4.elf and friends; a
	// Raspberry Pi 3 asks for bootcode.bin.
	DefaultBootFile = "bootcode.bin"
	// LeaseFile is the name of the lease file in Options.StateDir: a
	// kvlog (a JSON snapshot, {"<mac>": {"ip": "10.77.0.10", "name":
	// "pi-10", "expires": <Unix seconds>}}, and LeaseFile+".log" of
	// changes since), compacted in the background. A torn last change
	// after a crash is skipped; a corrupt snapshot is set aside.
	LeaseFile = "dhcp-leases.json"
)

// Options configures a Server.
type Options struct {
	// Interface is the network interface to serve on (SO_BINDTODEVICE).
	// Empty serves on every interface, which is only useful in tests.
	Interface string
	// Port is the UDP port to listen on; 0 means DefaultPort (67).
	// Replies still go to the clients' port 68.
	Port int
	// ServerIP is this server's IPv4 address on Interface: the server
	// identifier, the next server (siaddr) and the TFTP server (option
	// 66). Required.
	ServerIP net.IP
	// Subnet is the netboot subnet; its mask and broadcast address are
	// sent to the clients. Required.
	Subnet *net.IPNet
	// Router is the default gateway sent in option 3; nil sends none.
	Router net.IP
	// LeaseTime is the lease time; 0 means DefaultLeaseTime.
	LeaseTime time.Duration
	// BootFile is sent in option 67 and the file field; empty means
	// DefaultBootFile.
	BootFile string
	// StateDir holds the lease file. Empty keeps leases in memory only
	// and sends ACKs without waiting for a disk. The folder is created
	// if missing.
	StateDir string
	// Lookup says which MACs are declared. Required.
	Lookup Lookup
	// OnContact, if not nil, is called for every DISCOVER, REQUEST,
	// DECLINE, RELEASE and INFORM from a declared node, with the message
	// type ("DISCOVER", ...), before the reply is sent. It is called from
	// the serving goroutine and must not block.
	OnContact func(node Node, msgType string)
	// OnUnknown, if not nil, is called for every such message from a MAC
	// that Lookup does not know, with the vendor class (option 60, empty
	// if absent; untrusted, quote it before printing). It is called from
	// the serving goroutine and must not block; with many unknown clients
	// it is called often, so deduplicate there.
	OnUnknown func(mac net.HardwareAddr, vendorClass string)
	// Log receives lifecycle messages and errors at V(0) and one line per
	// answered or ignored request at V(1). The zero Logger discards.
	Log logr.Logger
}

// Lease is an address handed out with an ACK.
type Lease struct {
	// MAC is the client's Ethernet address.
	MAC net.HardwareAddr
	// IP is the leased IPv4 address.
	IP net.IP
	// Name is the node's name at the time of the ACK.
	Name string
	// Expires is when the lease ends, to the second.
	Expires time.Time
}

// Errors returned by New and Serve.
var (
	// ErrInvalidOptions wraps every configuration error from New.
	ErrInvalidOptions = errors.New("invalid dhcp options")
	// ErrClosed is returned by Serve after Close.
	ErrClosed = errors.New("dhcp server closed")
)

// Server is a DHCPv4 server for declared nodes. Create it with New, run it
// with Serve and stop it with Close. Its methods are safe for concurrent
// use.
type Server struct {
	o        Options
	log      logr.Logger
	debug    bool
	serverID [4]byte
	consts   replyConsts

	mu     sync.Mutex
	leases map[[6]byte]Lease
	store  *leaseStore // nil without StateDir

	send      atomic.Pointer[sendFunc]
	conn      *net.UDPConn
	closed    bool
	closeOnce sync.Once
}

// packet is an encoded reply and its destination.
type packet struct {
	msg []byte
	to  netip.AddrPort
}

// sendFunc transmits replies. It may be called from several goroutines at
// once and must not keep pkts.
type sendFunc func(pkts []packet)

// New checks the options, fills in the defaults and loads the lease file
// (compacting it). It does not open the socket; Serve does. The caller
// must call Close to release the lease file, even if Serve never runs.
func New(o Options) (*Server, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	s := &Server{
		o:      o,
		log:    o.Log,
		debug:  o.Log.V(1).Enabled(),
		leases: make(map[[6]byte]Lease),
	}
	copy(s.serverID[:], o.ServerIP.To4())
	s.consts = newReplyConsts(&o)
	if o.StateDir != "" {
		st, err := openLeaseStore(o.StateDir, &s.mu, s.leases, time.Now(), s.transmit, s.log)
		if err != nil {
			return nil, err
		}
		s.store = st
	}
	return s, nil
}

func (o *Options) defaults() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Port < 0 || o.Port > 65535 {
		return bad("port %d out of range", o.Port)
	}
	if o.ServerIP.To4() == nil {
		return bad("serverIP %v is not an IPv4 address", o.ServerIP)
	}
	o.ServerIP = o.ServerIP.To4()
	if o.Subnet == nil || o.Subnet.IP.To4() == nil {
		return bad("subnet must be an IPv4 network")
	}
	if ones, bits := o.Subnet.Mask.Size(); bits != 32 || ones == 0 {
		return bad("subnet %s must have an IPv4 mask of 1 to 32 bits", o.Subnet)
	}
	if !o.Subnet.Contains(o.ServerIP) {
		return bad("serverIP %s is not in subnet %s", o.ServerIP, o.Subnet)
	}
	if o.Router != nil {
		if o.Router.To4() == nil {
			return bad("router %v is not an IPv4 address", o.Router)
		}
		o.Router = o.Router.To4()
	}
	if o.LeaseTime == 0 {
		o.LeaseTime = DefaultLeaseTime
	}
	if o.LeaseTime < time.Second || o.LeaseTime/time.Second > 0xfffffffe {
		return bad("leaseTime %s must be between 1s and about 136 years", o.LeaseTime)
	}
	if o.BootFile == "" {
		o.BootFile = DefaultBootFile
	}
	if len(o.BootFile) > 127 || strings.ContainsRune(o.BootFile, 0) {
		return bad("bootFile %q must be at most 127 bytes without NUL", o.BootFile)
	}
	if o.Lookup == nil {
		return bad("no Lookup")
	}
	return nil
}

// Serve opens the UDP socket on Options.Interface and Options.Port and
// answers requests until ctx is done or Close is called. It blocks; it
// returns nil when ctx ended, ErrClosed after Close, and otherwise the
// error that stopped it (such as a port in use). Call it at most once.
func (s *Server) Serve(ctx context.Context) error {
	conn, err := server4.NewIPv4UDPConn(s.o.Interface, &net.UDPAddr{Port: s.o.Port})
	if err != nil {
		return fmt.Errorf("dhcp: listen on %q port %d: %w", s.o.Interface, s.o.Port, err)
	}
	setSocketBuffers(conn)
	s.mu.Lock()
	if s.closed || s.conn != nil {
		s.mu.Unlock()
		conn.Close()
		if s.closed {
			return ErrClosed
		}
		return errors.New("dhcp: Serve called twice")
	}
	s.conn = conn
	s.mu.Unlock()
	pc := ipv4.NewPacketConn(conn)
	send := batchSender(pc, func(err error) {
		if s.debug {
			s.log.V(1).Info("send failed", "err", err.Error())
		}
	})
	s.send.Store(&send)

	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	s.log.Info("serving", "interface", s.o.Interface, "port", s.o.Port, "serverIP", s.o.ServerIP.String())

	// Read up to readBatch requests per system call (recvmmsg) and send
	// the immediate replies to them in one (sendmmsg).
	ms := make([]ipv4.Message, readBatch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, maxRequest)}
	}
	var out []packet
	for {
		n, err := pc.ReadBatch(ms, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("dhcp: read: %w", err)
		}
		for i := range ms[:n] {
			var peer netip.AddrPort
			if ua, ok := ms[i].Addr.(*net.UDPAddr); ok {
				peer = ua.AddrPort()
			}
			out = s.dispatch(s.handle(ms[i].Buffers[0][:ms[i].N], peer), out)
		}
		if len(out) > 0 {
			send(out)
			clear(out)
			out = out[:0]
		}
	}
}

const (
	// readBatch is how many requests one recvmmsg may return.
	readBatch = 32
	// maxRequest is the largest request read: an Ethernet frame's UDP
	// payload. Longer datagrams are truncated and fail to parse.
	maxRequest = 1500
)

// batchSender returns a sendFunc that writes with sendmmsg through pc and
// reports errors to onErr.
func batchSender(pc *ipv4.PacketConn, onErr func(error)) sendFunc {
	type scratch struct {
		ms    []ipv4.Message
		addrs []net.UDPAddr
		ips   [][4]byte
	}
	pool := sync.Pool{New: func() any { return new(scratch) }}
	return func(pkts []packet) {
		sc := pool.Get().(*scratch)
		defer pool.Put(sc)
		if cap(sc.ms) < len(pkts) {
			sc.ms = make([]ipv4.Message, len(pkts))
			sc.addrs = make([]net.UDPAddr, len(pkts))
			sc.ips = make([][4]byte, len(pkts))
			for i := range sc.ms {
				sc.ms[i].Buffers = make([][]byte, 1)
			}
		}
		ms := sc.ms[:0]
		for _, p := range pkts {
			a := p.to.Addr().Unmap()
			if !a.Is4() {
				continue // cannot happen: every destination is IPv4
			}
			i := len(ms)
			ms = ms[:i+1]
			sc.ips[i] = a.As4()
			sc.addrs[i] = net.UDPAddr{IP: sc.ips[i][:], Port: int(p.to.Port())}
			ms[i].Buffers[0] = p.msg
			ms[i].Addr = &sc.addrs[i]
		}
		for len(ms) > 0 {
			n, err := pc.WriteBatch(ms, 0)
			if err != nil {
				onErr(err)
				n = max(n, 1) // skip the message that failed
			}
			ms = ms[n:]
		}
		for i := range sc.ms[:len(pkts)] {
			sc.ms[i].Buffers[0] = nil
			sc.ms[i].Addr = nil
		}
	}
}

// dispatch queues r's lease record and reply for the lease writer when r
// must be persisted, and otherwise appends r's reply (if any) to out,
// which it returns.
func (s *Server) dispatch(r response, out []packet) []packet {
	if r.persist && s.store != nil {
		s.mu.Lock()
		s.store.queue(r.lease, r.msg, r.to)
		s.mu.Unlock()
		return out
	}
	if r.msg != nil {
		out = append(out, packet{r.msg, r.to})
	}
	return out
}

// deliver dispatches r and sends what is to be sent now.
func (s *Server) deliver(r response) {
	if out := s.dispatch(r, nil); len(out) > 0 {
		s.transmit(out)
	}
}

// transmit sends pkts if Serve is running and drops them otherwise. It is
// also the lease writer's callback for ACKs whose records are on disk (or
// failed to get there: the address is fixed, so the node still gets its
// ACK, and the write error is logged).
func (s *Server) transmit(pkts []packet) {
	if send := s.send.Load(); send != nil {
		(*send)(pkts)
	}
}

// Close stops Serve, then waits until every lease queued so far is on
// disk and closes the lease file. ACKs still waiting for that write are
// dropped with the socket; their clients retransmit. It is safe to call
// more than once; later calls return nil.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		if s.store != nil {
			err = s.store.close()
		}
	})
	return err
}

// Leases returns the leases that have not expired or been released,
// sorted by IP address. The slices in it are copies.
func (s *Server) Leases() []Lease {
	now := time.Now()
	s.mu.Lock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		if l.Expires.After(now) {
			out = append(out, Lease{MAC: slices.Clone(l.MAC), IP: slices.Clone(l.IP), Name: l.Name, Expires: l.Expires})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Lease) int {
		aa, _ := netip.AddrFromSlice(a.IP.To4())
		bb, _ := netip.AddrFromSlice(b.IP.To4())
		if c := aa.Compare(bb); c != 0 {
			return c
		}
		return strings.Compare(a.MAC.String(), b.MAC.String())
	})
	return out
}

// StatePath returns the lease file's path, or "" without StateDir.
func (s *Server) StatePath() string {
	if s.o.StateDir == "" {
		return ""
	}
	return filepath.Join(s.o.StateDir, LeaseFile)
}

// socketBuffer is the receive and send buffer size: room for a burst of
// a few thousand requests (perfdhcp, a rack of Pis powering on at once)
// while the serving goroutine waits for a CPU.
const socketBuffer = 4 << 20

// setSocketBuffers enlarges the socket buffers, beyond net.core.rmem_max
// and wmem_max when the process may (CAP_NET_ADMIN).
func setSocketBuffers(conn *net.UDPConn) {
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer)
		})
	}
	if n, err := readBuffer(conn); err != nil || n < socketBuffer {
		_ = conn.SetReadBuffer(socketBuffer)
		_ = conn.SetWriteBuffer(socketBuffer)
	}
}

func readBuffer(conn *net.UDPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var serr error
	if err := rc.Control(func(fd uintptr) { n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil {
		return 0, err
	}
	return n, serr
}
