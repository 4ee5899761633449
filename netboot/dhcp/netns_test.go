// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/netnstest"
)

// helperConfig configures TestHelperServer, passed as JSON in
// $DHCPTEST_CONFIG.
type helperConfig struct {
	Interface, ServerIP, Subnet, StateDir string
	Port                                  int
	Nodes                                 map[string]helperNode // by MAC
	Pool                                  string                // declare every MAC, from this prefix
	Verbose                               bool
}

type helperNode struct{ IP, Name string }

// TestHelperServer is not a test: it is the DHCP server process the netns
// tests start inside the server namespace (a Go process cannot move all
// its threads into a namespace). It prints "ready" once it listens,
// "contact NAME TYPE" and "unknown MAC VENDORCLASS" for the callbacks,
// answers "leases" on stdin with "lease MAC IP NAME" lines and "end",
// and exits when stdin closes.
func TestHelperServer(t *testing.T) {
	cfgJSON := os.Getenv("DHCPTEST_CONFIG")
	if cfgJSON == "" {
		t.Skip("helper process for the netns tests")
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		t.Fatal(err)
	}
	_, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil {
		t.Fatal(err)
	}
	var outMu sync.Mutex
	say := func(line string) {
		outMu.Lock()
		fmt.Println(line)
		outMu.Unlock()
	}
	o := Options{
		Interface: cfg.Interface,
		Port:      cfg.Port,
		ServerIP:  net.ParseIP(cfg.ServerIP),
		Subnet:    subnet,
		Router:    net.ParseIP(cfg.ServerIP),
		StateDir:  cfg.StateDir,
		Log:       logr.Discard(),
	}
	if cfg.Verbose {
		o.Log = funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1})
	}
	if cfg.Pool != "" {
		o.Lookup = poolLookup(netip.MustParsePrefix(cfg.Pool))
	} else {
		o.Lookup = func(mac net.HardwareAddr) (Node, bool) {
			n, ok := cfg.Nodes[mac.String()]
			return Node{IP: net.ParseIP(n.IP), Name: n.Name}, ok
		}
		o.OnContact = func(n Node, mt string) { say("contact " + n.Name + " " + mt) }
		o.OnUnknown = func(mac net.HardwareAddr, vc string) { say("unknown " + mac.String() + " " + strconv.Quote(vc)) }
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "leases" {
				for _, l := range s.Leases() {
					say(fmt.Sprintf("lease %s %s %s", l.MAC, l.IP, l.Name))
				}
				say("end")
			}
		}
		cancel()
	}()
	// Ready once the socket shows up in this namespace's /proc/net/udp.
	port := fmt.Sprintf(":%04X ", cfg.Port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		b, _ := os.ReadFile("/proc/net/udp")
		if strings.Contains(string(b), "00000000"+port) {
			say("ready")
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		syncs := 0
		if s.store != nil {
			syncs = s.store.syncs() // the writer has stopped
		}
		fmt.Fprintf(os.Stderr, "cpu user=%.3fs sys=%.3fs, %d lease fsyncs\n", time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds(), syncs)
	}
	say("closed")
}

// helper is a running TestHelperServer.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	exit  chan error
}

func startHelper(t *testing.T, nw *netnstest.Net, cfg helperConfig) *helper {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := nw.Command(nw.Server, os.Args[0], "-test.run=^TestHelperServer$", "-test.v")
	cmd.Env = append(os.Environ(), "DHCPTEST_CONFIG="+string(b))
	cmd.Stderr = &testWriter{t: t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.exit <- cmd.Wait()
	}()
	t.Cleanup(h.stop)
	h.expect("ready", 20*time.Second)
	return h
}

// expect waits for a line starting with prefix and returns it.
func (h *helper) expect(prefix string, timeout time.Duration) string {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				h.t.Fatalf("helper exited while waiting for %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline:
			h.t.Fatalf("no %q from the helper within %v", prefix, timeout)
		}
	}
}

// leases asks the helper for its leases.
func (h *helper) leases() []string {
	h.t.Helper()
	if _, err := io.WriteString(h.stdin, "leases\n"); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for {
		line := h.expect("", 10*time.Second)
		if line == "end" {
			return out
		}
		if strings.HasPrefix(line, "lease ") {
			out = append(out, strings.TrimPrefix(line, "lease "))
		}
	}
}

// stop closes stdin and waits (bounded) for the helper to exit.
func (h *helper) stop() {
	if h.stdin == nil {
		return
	}
	h.stdin.Close()
	h.stdin = nil
	select {
	case <-h.exit:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.exit
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("helper: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

const udhcpcScript = `#!/bin/sh
echo "event=$1"
for v in ip siaddr subnet router lease serverid tftp bootfile vendor hostname opt43 opt60 opt66 opt67 opt97; do
  eval "val=\${$v}"; [ -n "$val" ] && echo "$v=$val"
done
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`

const dhclientConf = `option client-arch code 93 = unsigned integer 16;
option pxe-undi code 94 = string;
option rpi-boot code 43 = string;
send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";
send client-arch 0;
send pxe-undi 01:02:01;
request subnet-mask, routers, vendor-class-identifier, vendor-encapsulated-options, tftp-server-name, bootfile-name;
timeout 5; retry 1; initial-interval 1;
`

const dhclientScript = `#!/bin/sh
echo "reason=$reason"
env | grep -E '^new_' | sort
case "$reason" in BOUND|RENEW|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface";; esac
exit 0
`

// udhcpc runs one PXE-style DORA like udhcpc-pxe.sh (what a Raspberry Pi
// bootloader sends) in ns and returns the script's output as a map.
func udhcpc(t *testing.T, nw *netnstest.Net, ns, script string, extra ...string) (map[string]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nw.Exec(ctx, ns, "ip", "addr", "flush", "dev", "eth0")
	args := append([]string{"busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-t", "3", "-T", "1", "-s", script,
		"-V", pxeVendor, "-x", "0x5d:0000", "-x", "0x5e:010201",
		"-x", "0x61:00000102030405060708090a0b0c0d0e0f", "-O", "43", "-O", "60", "-O", "66", "-O", "67", "-O", "97"}, extra...)
	out, err := nw.Exec(ctx, ns, args...)
	t.Logf("udhcpc in %s:\n%s", ns, out)
	return parseVars(out), err
}

func parseVars(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.Contains(k, " ") {
			m[k] = v
		}
	}
	return m
}

func writeScript(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("NETNSTEST_REQUIRE") == "1" {
				t.Fatalf("%s is not installed (NETNSTEST_REQUIRE=1)", tool)
			}
			fixtures.SkipOrFail(t, fmt.Sprintf("%s is not installed", tool))
		}
	}
}

// TestNetns runs the server in a network namespace against busybox udhcpc
// and ISC dhclient in client namespaces: declared MACs get their address
// and the boot options, an undeclared one gets nothing, leases survive a
// restart.
func TestNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces in -short mode")
	}
	needTools(t, "busybox", "dhclient")
	nw := netnstest.New(t, 3)
	dir := t.TempDir()
	cfg := helperConfig{
		Interface: nw.Iface, Port: 67, ServerIP: nw.ServerIP, Subnet: nw.Subnet,
		StateDir: filepath.Join(dir, "state"),
		Nodes: map[string]helperNode{
			netnstest.ClientMAC(0): {IP: "10.77.0.10", Name: "pi-10"},
			netnstest.ClientMAC(2): {IP: "10.77.0.12", Name: "pi-12"},
		},
	}
	h := startHelper(t, nw, cfg)
	script := writeScript(t, dir, "udhcpc.script", udhcpcScript)

	t.Run("udhcpc PXE", func(t *testing.T) {
		got, err := udhcpc(t, nw, nw.Clients[0], script)
		if err != nil {
			t.Fatalf("udhcpc: %v", err)
		}
		want := map[string]string{
			"event": "bound", "ip": "10.77.0.10", "siaddr": "10.77.0.1", "subnet": "255.255.255.0", "router": "10.77.0.1",
			"lease": "3600", "serverid": "10.77.0.1", "tftp": "10.77.0.1", "bootfile": "bootcode.bin", "vendor": "PXEClient",
			"hostname": "pi-10", "opt43": rpiBootHex, "opt97": "00000102030405060708090a0b0c0d0e0f",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		h.expect("contact pi-10 DISCOVER", 5*time.Second)
		h.expect("contact pi-10 REQUEST", 5*time.Second)
	})

	t.Run("udhcpc iPXE gets no option 43", func(t *testing.T) {
		got, err := udhcpc(t, nw, nw.Clients[0], script, "-x", "0x4d:69505845")
		if err != nil {
			t.Fatalf("udhcpc: %v", err)
		}
		if got["ip"] != "10.77.0.10" || got["opt43"] != "" || got["tftp"] != "10.77.0.1" {
			t.Errorf("iPXE lease: ip %q opt43 %q tftp %q; want 10.77.0.10, no option 43, tftp 10.77.0.1", got["ip"], got["opt43"], got["tftp"])
		}
	})

	t.Run("undeclared MAC gets no answer", func(t *testing.T) {
		got, err := udhcpc(t, nw, nw.Clients[1], script)
		if err == nil || got["ip"] != "" {
			t.Fatalf("udhcpc for an undeclared MAC: err %v, ip %q; want a timeout", err, got["ip"])
		}
		h.expect(fmt.Sprintf("unknown %s %q", netnstest.ClientMAC(1), pxeVendor), 5*time.Second)
	})

	t.Run("dhclient", func(t *testing.T) {
		conf := writeScript(t, dir, "dhclient.conf", dhclientConf)
		sf := writeScript(t, dir, "dhclient.script", dhclientScript)
		pid := filepath.Join(dir, "dhclient.pid")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := nw.Exec(ctx, nw.Clients[2], "dhclient", "-4", "-1", "-cf", conf, "-sf", sf,
			"-lf", filepath.Join(dir, "dhclient.leases"), "-pf", pid, "eth0")
		t.Logf("dhclient:\n%s", out)
		// dhclient forks into the background once bound; netnstest kills
		// it with the namespace, but stop it now.
		if b, rerr := os.ReadFile(pid); rerr == nil {
			if p, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				syscall.Kill(p, syscall.SIGTERM)
			}
		}
		if err != nil {
			t.Fatalf("dhclient: %v", err)
		}
		got := parseVars(out)
		want := map[string]string{
			"reason": "BOUND", "new_ip_address": "10.77.0.12", "new_next_server": "10.77.0.1", "new_tftp_server_name": "10.77.0.1",
			"new_bootfile_name": "bootcode.bin", "new_vendor_class_identifier": "PXEClient",
			"new_rpi_boot": "6:1:3:a:4:0:50:58:45:9:14:0:0:11:52:61:73:70:62:65:72:72:79:20:50:69:20:42:6f:6f:74:ff",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	})

	t.Run("leases survive a restart", func(t *testing.T) {
		want := []string{netnstest.ClientMAC(0) + " 10.77.0.10 pi-10", netnstest.ClientMAC(2) + " 10.77.0.12 pi-12"}
		if got := h.leases(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("leases %q, want %q", got, want)
		}
		h.stop()
		h2 := startHelper(t, nw, cfg)
		if got := h2.leases(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("leases after restart %q, want %q", got, want)
		}
	})
}
