// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/netnstest"
	"github.com/reconciled/reconciled/test/fixtures/snmptest"
)

// qemuMAC and qemuIP are the VM's NIC and the address its PiNode declares.
const (
	qemuMAC = "52:54:00:77:00:21"
	qemuIP  = "10.77.0.21"
)

// qemuBootTimeout bounds the VM's whole netboot (about 4 s under TCG).
const qemuBootTimeout = 60 * time.Second

// ipxeROM finds the iPXE option ROM QEMU gives an e1000 NIC, in QEMU's
// firmware folders (qemu-system-x86_64 -L help; Debian's ipxe-qemu puts it
// in /usr/lib/ipxe/qemu).
func ipxeROM(qemu string) string {
	dirs := []string{"/usr/lib/ipxe/qemu", "/usr/share/qemu"}
	if out, err := exec.Command(qemu, "-L", "help").Output(); err == nil {
		dirs = append(strings.Fields(string(out)), dirs...)
	}
	for _, d := range dirs {
		for _, name := range []string{"efi-e1000.rom", "pxe-e1000.rom"} {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
		}
	}
	return ""
}

// startInNetns starts a long-running program inside namespace ns, its
// output in log, and kills it (SIGKILL, its whole process group) at
// cleanup. ip netns exec execs the program, so the pid is the program's.
// The returned channel is closed when the program has exited.
func startInNetns(t *testing.T, ns, log string, args ...string) <-chan struct{} {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", args[0], err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return done
}

// logLine finds the first line of the daemon's log that has all of fields
// (key=value, as slog's text handler writes them unquoted) and returns
// its time.
func logLine(log string, fields ...string) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		have := map[string]bool{}
		var at time.Time
		for _, f := range strings.Fields(line) {
			have[f] = true
			if v, ok := strings.CutPrefix(f, "time="); ok {
				at, _ = time.Parse(time.RFC3339Nano, v)
			}
		}
		all := true
		for _, f := range fields {
			all = all && have[f]
		}
		if all {
			return at, true
		}
	}
	return time.Time{}, false
}

func ipIn(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// A real netbooting machine, once: an x86 VM (QEMU, TCG) whose e1000 NIC
// runs the iPXE option ROM is plugged into the netboot bridge of the
// daemon's namespace through a tap device, like a Pi on a switch port. It
// gets its declared address from the daemon's DHCP server and fetches the
// boot file from its TFTP server; its contact reaches the PiNode's status.
// dnsmasq sends IPv6 router advertisements only, or iPXE waits about 15 s
// for IPv6 before booting.
func TestQEMUNetboot(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		fixtures.SkipOrFail(t, "qemu-system-x86_64 is not installed (make test installs qemu-system-x86 and ipxe-qemu: hack/install-test-deps.sh)")
	}
	rom := ipxeROM(qemu)
	if rom == "" {
		fixtures.SkipOrFail(t, "no iPXE ROM for QEMU's e1000 (efi-e1000.rom) found; install ipxe-qemu (hack/install-test-deps.sh)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		fixtures.SkipOrFail(t, "no /dev/net/tun: QEMU's tap device needs the tun driver")
	}
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		fixtures.SkipOrFail(t, "dnsmasq (IPv6 router advertisements for iPXE) is not installed; see hack/install-test-deps.sh")
	}

	nw := netnstest.New(t, 0)
	sw := snmptest.StartWith(t, snmptest.Options{Namespace: nw.Server, ListenIP: nw.ServerIP})
	work, root := t.TempDir(), t.TempDir()

	// The VM's port on the netboot bridge: a tap device in the daemon's
	// namespace, enslaved to the bridge the daemon serves on, so the
	// daemon's settings are exactly those of the shell-Pi tests. The tap
	// has no carrier until QEMU opens it; the bridge forwards at once (no
	// STP). DAD is off on the bridge so its IPv6 addresses, which dnsmasq
	// needs for router advertisements, are usable as soon as the VM is up.
	const tap = "tapq0"
	ipIn(t, "netns", "exec", nw.Server, "sysctl", "-q", "-w", "net.ipv6.conf."+nw.Iface+".accept_dad=0")
	ipIn(t, "-n", nw.Server, "tuntap", "add", "dev", tap, "mode", "tap")
	ipIn(t, "-n", nw.Server, "link", "set", tap, "master", nw.Iface)
	ipIn(t, "-n", nw.Server, "link", "set", tap, "up")
	ipIn(t, "-n", nw.Server, "addr", "add", "fd77::1/64", "dev", nw.Iface, "nodad")

	// The boot file iPXE asks for: the DHCP server's default bootfile
	// (option 67 and the file field). It need not be bootable.
	bootFile := make([]byte, 4096)
	copy(bootFile, "not a real boot program: reconciled e2e qemu netboot\n")
	writeFile(t, filepath.Join(root, "bootcode.bin"), string(bootFile))

	cfg := netbootConfig(t, work, nw, root, "")
	e := newEnv(t, "--config", cfg)
	e.netns = nw.Server
	e.start()
	// Declared as installed (installGeneration 0): no power cycle, the VM
	// is started by the test, not by the switch.
	e.write("vm.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: PiNode
metadata: {name: vm}
spec:
  mac: %q
  ip: %s
  switch: {address: %q, port: 1, community: %s}
  installGeneration: 0
`, qemuMAC, qemuIP, sw.Addr, sw.Community))
	e.eventually("the PiNode is loaded", func() bool {
		_, _, code := e.ctlQuiet("get", "pinode/vm")
		return code == 0
	})

	// IPv6 router advertisements only: no DHCPv4, DHCPv6, DNS or TFTP.
	dnsmasqLog := filepath.Join(work, "dnsmasq.log")
	startInNetns(t, nw.Server, dnsmasqLog, dnsmasq, "--no-daemon", "--port=0", "--conf-file=/dev/null",
		"--pid-file="+filepath.Join(work, "dnsmasq.pid"), "--interface="+nw.Iface, "--bind-interfaces",
		"--enable-ra", "--dhcp-range=fd77::,ra-only", "--log-facility=-")

	qemuLog := filepath.Join(work, "qemu.log")
	start := time.Now()
	exited := startInNetns(t, nw.Server, qemuLog, qemu, "-accel", "tcg", "-nodefaults", "-no-user-config",
		"-m", "128", "-display", "none", "-boot", "n", "-no-reboot",
		"-netdev", "tap,id=n0,ifname="+tap+",script=no,downscript=no",
		"-device", "e1000,netdev=n0,mac="+qemuMAC+",romfile="+rom)

	ack := []string{"msg=answered", "type=ACK", "mac=" + qemuMAC, "ip=" + qemuIP}
	served := []string{"msg=served", "remote=" + qemuIP, "path=bootcode.bin", fmt.Sprintf("bytes=%d", len(bootFile))}
	var ackAt, servedAt time.Time
	acked := false
	deadline := start.Add(qemuBootTimeout)
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		log := e.log.String()
		ackAt, acked = logLine(log, ack...)
		var ok bool
		if servedAt, ok = logLine(log, served...); acked && ok {
			break
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(qemuLog)
			t.Fatalf("qemu exited before the netboot (DHCP ACK: %v):\n%s", acked, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(qemuLog)
			ra, _ := os.ReadFile(dnsmasqLog)
			t.Fatalf("no DHCP ACK and TFTP transfer of bootcode.bin to %s within %s (DHCP ACK: %v)\nqemu:\n%s\ndnsmasq:\n%s",
				qemuIP, qemuBootTimeout, acked, out, ra)
		}
		time.Sleep(delay)
	}
	t.Logf("VM %s (%s): DHCP ACK %s and bootcode.bin served %s after qemu started", qemuMAC, filepath.Base(rom),
		ackAt.Sub(start).Round(time.Millisecond), servedAt.Sub(start).Round(time.Millisecond))

	// The VM's DHCP and TFTP contact is the PiNode's last sighting.
	e.eventually("the VM's contact in the PiNode's status", func() bool {
		return strings.Contains(e.read("vm.yaml"), "lastSeen:")
	})
	var lines []string
	for _, l := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(l, qemuMAC) || strings.Contains(l, qemuIP) {
			lines = append(lines, l)
		}
	}
	t.Logf("daemon log about the VM:\n%s", strings.Join(lines, "\n"))
}
