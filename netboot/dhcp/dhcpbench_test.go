// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/reconciled/reconciled/kvlog"
	"github.com/reconciled/reconciled/test/fixtures/netnstest"
)

// poolLookup declares every MAC, with an address in pool derived from the
// MAC's last three bytes (skipping the network and .1). It is for load
// tests such as perfdhcp, whose clients have random MACs.
func poolLookup(pool netip.Prefix) Lookup {
	base := binary.BigEndian.Uint32(pool.Masked().Addr().AsSlice())
	size := uint32(1) << (32 - pool.Bits())
	return func(mac net.HardwareAddr) (Node, bool) {
		if len(mac) != 6 {
			return Node{}, false
		}
		n := uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+2+n%(size-3))
		return Node{IP: ip}, true
	}
}

func benchServer(b *testing.B, stateDir string) *Server {
	o := testOptions(b)
	o.Log = logr.Discard()
	o.StateDir = stateDir
	s := newTestServer(b, o)
	send := sendFunc(func([]packet) {})
	s.send.Store(&send)
	return s
}

// BenchmarkHandle measures one request through the handler (parse,
// lookup, reply) without the socket.
func BenchmarkHandle(b *testing.B) {
	peer := netip.MustParseAddrPort("0.0.0.0:68")
	sid := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 1)))
	req := dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 10)))
	for name, msg := range map[string][]byte{
		"discover":     request(b, dhcpv4.MessageTypeDiscover, rpiMAC, pxe(pxeVendor, 0)...),
		"request":      request(b, dhcpv4.MessageTypeRequest, rpiMAC, append(pxe(pxeVendor, 0), sid, req)...),
		"unknown":      request(b, dhcpv4.MessageTypeDiscover, unknownMAC, pxe(pxeVendor, 0)...),
		"request+disk": request(b, dhcpv4.MessageTypeRequest, rpiMAC, append(pxe(pxeVendor, 0), sid, req)...),
	} {
		b.Run(name, func(b *testing.B) {
			dir := ""
			if name == "request+disk" {
				dir = b.TempDir()
			}
			s := benchServer(b, dir)
			b.ReportAllocs()
			for b.Loop() {
				s.deliver(s.handle(msg, peer))
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// perfdhcpResult is one perfdhcp run, parsed.
type perfdhcpResult struct {
	Rate                  string  // perfdhcp's "Rate:" (4-way exchanges/s)
	DOSent, DORcv, DODrop int     // DISCOVER-OFFER
	RASent, RARcv, RADrop int     // REQUEST-ACK
	DOAvg, RAAvg          float64 // ms
	DOP50, DOP99, DOMax   float64 // ms, from -x t
	RAP50, RAP99, RAMax   float64
	LeasesPerSec          float64 // ACKs received / test period
	Seconds               int
	Raw                   string
}

func (r perfdhcpResult) String() string {
	return fmt.Sprintf("leases/s=%.0f (perfdhcp Rate %s) | DO sent=%d rcv=%d drops=%d avg=%.3fms p50=%.3fms p99=%.3fms max=%.3fms | RA sent=%d rcv=%d drops=%d avg=%.3fms p50=%.3fms p99=%.3fms",
		r.LeasesPerSec, r.Rate, r.DOSent, r.DORcv, r.DODrop, r.DOAvg, r.DOP50, r.DOP99, r.DOMax, r.RASent, r.RARcv, r.RADrop, r.RAAvg, r.RAP50, r.RAP99)
}

// parsePerfdhcp reads perfdhcp -x t output.
func parsePerfdhcp(out string, secs int) perfdhcpResult {
	r := perfdhcpResult{Seconds: secs, Raw: out}
	sec := ""
	var delays = map[string][]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Rate:") && len(f) > 1:
			r.Rate = f[1]
		case strings.Contains(line, "DISCOVER-OFFER"):
			sec = "DO"
		case strings.Contains(line, "REQUEST-ACK"):
			sec = "RA"
		case strings.HasPrefix(line, "sent packets:") && len(f) == 3:
			n, _ := strconv.Atoi(f[2])
			*map[string]*int{"DO": &r.DOSent, "RA": &r.RASent}[sec] = n
		case strings.HasPrefix(line, "received packets:") && len(f) == 3:
			n, _ := strconv.Atoi(f[2])
			*map[string]*int{"DO": &r.DORcv, "RA": &r.RARcv}[sec] = n
		case strings.HasPrefix(line, "drops:") && len(f) == 2:
			n, _ := strconv.Atoi(f[1])
			*map[string]*int{"DO": &r.DODrop, "RA": &r.RADrop}[sec] = n
		case strings.HasPrefix(line, "avg delay:") && len(f) == 4:
			v, _ := strconv.ParseFloat(f[2], 64)
			*map[string]*float64{"DO": &r.DOAvg, "RA": &r.RAAvg}[sec] = v
		case strings.HasPrefix(line, "sent / received:") && len(f) == 6:
			a, _ := strconv.ParseFloat(f[3], 64)
			b, _ := strconv.ParseFloat(f[5], 64)
			delays[sec] = append(delays[sec], (b-a)*1000)
		}
	}
	pct := func(d []float64, p float64) float64 {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(float64(len(d))*p))]
	}
	for _, k := range []string{"DO", "RA"} {
		slices.Sort(delays[k])
	}
	r.DOP50, r.DOP99, r.DOMax = pct(delays["DO"], 0.5), pct(delays["DO"], 0.99), pct(delays["DO"], 1)
	r.RAP50, r.RAP99, r.RAMax = pct(delays["RA"], 0.5), pct(delays["RA"], 0.99), pct(delays["RA"], 1)
	if secs > 0 {
		r.LeasesPerSec = float64(r.RARcv) / float64(secs)
	}
	return r
}

// udpStats returns the Udp counters of /proc/net/snmp in namespace ns.
func udpStats(t *testing.T, nw *netnstest.Net, ns string) map[string]int {
	out, err := nw.Exec(context.Background(), ns, "cat", "/proc/net/snmp")
	if err != nil {
		t.Logf("udp stats: %v", err)
	}
	var names []string
	m := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				m[names[i]], _ = strconv.Atoi(v)
			}
		}
	}
	return m
}

// waitUDPPort waits until something listens on UDP port in namespace ns.
func waitUDPPort(t *testing.T, nw *netnstest.Net, ns string, port int) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		out, _ := nw.Exec(ctx, ns, "cat", "/proc/net/udp")
		if strings.Contains(out, "00000000"+want) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("nothing listens on UDP port %d in %s", port, ns)
}

func envInts(t *testing.T, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, n)
	}
	return out
}

// TestPerfdhcpVsDnsmasq is the DHCP load benchmark (Debian kea-admin's
// perfdhcp in relay mode, like perfdhcp-run.sh) against this server and
// against dnsmasq, in the same run and the same namespaces, each with its
// leases on disk. It runs only with RECONCILED_DHCP_BENCH=1; rates and
// seconds come from RECONCILED_DHCP_BENCH_RATES (default 1000,5000,10000)
// and RECONCILED_DHCP_BENCH_SECS (default 5), the lease folder from
// RECONCILED_DHCP_BENCH_DIR (default a t.TempDir()).
//
//	sudo RECONCILED_DHCP_BENCH=1 go test -run TestPerfdhcpVsDnsmasq -v ./netboot/dhcp/
func TestPerfdhcpVsDnsmasq(t *testing.T) {
	if os.Getenv("RECONCILED_DHCP_BENCH") != "1" {
		t.Skip("set RECONCILED_DHCP_BENCH=1 to run the perfdhcp benchmark")
	}
	needTools(t, "perfdhcp", "dnsmasq")
	rates := envInts(t, "RECONCILED_DHCP_BENCH_RATES", []int{1000, 5000, 10000})
	secs := envInts(t, "RECONCILED_DHCP_BENCH_SECS", []int{5})[0]
	base := os.Getenv("RECONCILED_DHCP_BENCH_DIR")
	if base == "" {
		base = t.TempDir()
	}
	nw := netnstest.New(t, 1)
	// perfdhcp is the relay: giaddr = its own address.
	nw.SetClientAddr(0, "10.77.0.2")

	perf := func(rate int) perfdhcpResult {
		t.Helper()
		srv0, cli0 := udpStats(t, nw, nw.Server), udpStats(t, nw, nw.Clients[0])
		defer func() {
			srv1, cli1 := udpStats(t, nw, nw.Server), udpStats(t, nw, nw.Clients[0])
			t.Logf("UDP receive buffer overflows: server %d, perfdhcp %d", srv1["RcvbufErrors"]-srv0["RcvbufErrors"], cli1["RcvbufErrors"]-cli0["RcvbufErrors"])
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+60)*time.Second)
		defer cancel()
		out, err := nw.Exec(ctx, nw.Clients[0], "perfdhcp", "-4", "-l", "10.77.0.2", "-r", strconv.Itoa(rate),
			"-p", strconv.Itoa(secs), "-R", "60000", "-W", "2000000", "-x", "t", nw.ServerIP)
		// perfdhcp exits 3 when packets were dropped: still a result.
		if ctx.Err() != nil || (err != nil && !strings.Contains(out, "Statistics for")) {
			t.Fatalf("perfdhcp: %v\n%s", err, out)
		}
		return parsePerfdhcp(out, secs)
	}

	type row struct {
		server string
		rate   int
		r      perfdhcpResult
	}
	var rows []row
	for i, rate := range rates {
		dir := filepath.Join(base, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// Ours: every MAC declared, addresses from a /16 pool.
		h := startHelper(t, nw, helperConfig{
			Interface: nw.Iface, Port: 67, ServerIP: nw.ServerIP, Subnet: "10.77.0.0/16",
			StateDir: filepath.Join(dir, "ours"), Pool: "10.77.0.0/16",
		})
		r := perf(rate)
		h.stop()
		leases := 0
		if kv, err := kvlog.Open[leaseRecord](filepath.Join(dir, "ours", LeaseFile)); err == nil {
			leases = kv.Len()
			kv.Close()
		}
		t.Logf("ours    @%5d/s: %s (lease file %d leases)", rate, r, leases)
		rows = append(rows, row{"reconciled", rate, r})

		// dnsmasq as in dnsmasq-pxe.sh (--no-ping, lease file on disk).
		dm := nw.Command(nw.Server, "dnsmasq", "--no-daemon", "--port=0", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
			"--interface="+nw.Iface, "--bind-interfaces",
			"--dhcp-range=10.77.1.0,10.77.254.254,255.255.0.0,1h", "--dhcp-lease-max=70000", "--dhcp-authoritative", "--no-ping",
			"--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
			"--dhcp-option=option:router,10.77.0.1",
			"--dhcp-vendorclass=set:pxe,PXEClient", "--dhcp-userclass=set:ipxe,iPXE",
			"--dhcp-boot=tag:pxe,tag:!ipxe,undionly.kpxe,,10.77.0.1", "--dhcp-boot=tag:ipxe,boot.ipxe,,10.77.0.1",
			"--dhcp-option=tag:pxe,option:tftp-server,10.77.0.1", `--pxe-service=tag:!ipxe,x86PC,Raspberry Pi Boot`,
			"--quiet-dhcp", "--log-facility=-")
		dm.Stderr = &testWriter{t: t}
		if err := dm.Start(); err != nil {
			t.Fatal(err)
		}
		waitUDPPort(t, nw, nw.Server, 67)
		r = perf(rate)
		dm.Process.Signal(syscall.SIGTERM)
		dm.Wait()
		b, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.leases"))
		t.Logf("dnsmasq @%5d/s: %s (lease file %d leases)", rate, r, strings.Count(string(b), "\n"))
		rows = append(rows, row{"dnsmasq", rate, r})
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-10s %6s %9s %7s %9s %9s %9s %9s %9s\n", "server", "rate", "leases/s", "drops", "DO avg", "DO p50", "DO p99", "RA avg", "RA p99")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-10s %6d %9.0f %7d %8.3fms %8.3fms %8.3fms %8.3fms %8.3fms\n", r.server, r.rate, r.r.LeasesPerSec,
			r.r.DODrop+r.r.RADrop, r.r.DOAvg, r.r.DOP50, r.r.DOP99, r.r.RAAvg, r.r.RAP99)
	}
	t.Logf("perfdhcp relay mode, %ds per run, 60000 clients:\n%s", secs, sb.String())
}
