// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package netnstest gives tests a private network: a server namespace and
// one or more client namespaces, each client joined to the server by its
// own veth pair inside a bridge in the server namespace. Nothing is routed
// out of them and the host's interfaces are never touched, so DHCP
// broadcasts and TFTP stay inside.
//
//	<name>-srv:  br0 = ServerIP/24 (the netboot interface), lo
//	<name>-cN:   eth0 with MAC 02:00:00:77:00:<10+N>, no address, lo
//
// Needs root and iproute2; tests are skipped without them (and fail with
// NETNSTEST_REQUIRE=1).
package netnstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconciled/reconciled/internal/fixture"
)

// Net is a server namespace with client namespaces.
type Net struct {
	// Server is the server namespace's name; its interface Iface has
	// ServerIP/24 in Subnet.
	Server, Iface, ServerIP, Subnet string
	// Clients are the client namespaces; client i's interface eth0 has
	// MAC ClientMAC(i).
	Clients []string

	t    fixture.TB
	name string
}

var (
	seq    atomic.Int32
	gcOnce sync.Once
)

// nsNameRE matches the namespaces New makes: nt<pid>-<seq>-srv|c<i>.
var nsNameRE = regexp.MustCompile(`^nt(\d+)-\d+-(srv|c\d+)$`)

// gc deletes the namespaces that killed tests or demos left: those named
// after a process that is gone, and those named after this process (which
// has made none yet), so that a reused pid cannot collide with them.
func gc() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	self := strconv.Itoa(os.Getpid() % 100000)
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		m := nsNameRE.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil && m[1] != self {
			continue // its owner may still run
		}
		(&Net{Server: fields[0]}).Close()
	}
}

// New creates a server namespace and n client namespaces for t and removes
// them (killing whatever still runs inside) at cleanup.
func New(t fixture.TB, n int) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "netnstest: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip(t, "netnstest: iproute2 is not installed")
	}
	gcOnce.Do(gc)
	id := fmt.Sprintf("nt%d-%d", os.Getpid()%100000, seq.Add(1))
	nw := &Net{t: t, name: id, Server: id + "-srv", Iface: "br0", ServerIP: "10.77.0.1", Subnet: "10.77.0.0/24"}
	t.Cleanup(nw.Close)
	nw.ip("netns", "add", nw.Server)
	nw.ip("-n", nw.Server, "link", "set", "lo", "up")
	nw.ip("-n", nw.Server, "link", "add", "br0", "type", "bridge")
	nw.ip("-n", nw.Server, "addr", "add", nw.ServerIP+"/24", "dev", "br0")
	nw.ip("-n", nw.Server, "link", "set", "br0", "up")
	for i := range n {
		nw.AddClient()
		_ = i
	}
	return nw
}

// AddClient adds a client namespace and returns its name.
func (nw *Net) AddClient() string {
	nw.t.Helper()
	i := len(nw.Clients)
	cli := fmt.Sprintf("%s-c%d", nw.name, i)
	s, c := fmt.Sprintf("%ss%d", nw.name, i), fmt.Sprintf("%sc%d", nw.name, i)
	nw.ip("netns", "add", cli)
	nw.Clients = append(nw.Clients, cli)
	nw.ip("link", "add", s, "type", "veth", "peer", "name", c)
	nw.ip("link", "set", s, "netns", nw.Server)
	nw.ip("link", "set", c, "netns", cli)
	nw.ip("-n", nw.Server, "link", "set", s, "master", "br0")
	nw.ip("-n", nw.Server, "link", "set", s, "up")
	nw.ip("-n", cli, "link", "set", "lo", "up")
	nw.ip("-n", cli, "link", "set", c, "name", "eth0")
	nw.ip("-n", cli, "link", "set", "eth0", "address", ClientMAC(i))
	nw.ip("-n", cli, "link", "set", "eth0", "up")
	return cli
}

// ClientMAC is the MAC address of client i's eth0.
func ClientMAC(i int) string { return fmt.Sprintf("02:00:00:77:00:%02x", 0x10+i) }

// Exec runs a command inside namespace ns (ip netns exec) and returns its
// combined output.
func (nw *Net) Exec(ctx context.Context, ns string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Command returns an unstarted command that runs inside namespace ns.
func (nw *Net) Command(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// SetClientAddr gives client i's eth0 an address in the subnet (for tests
// that skip DHCP).
func (nw *Net) SetClientAddr(i int, ip string) {
	nw.t.Helper()
	nw.ip("-n", nw.Clients[i], "addr", "add", ip+"/24", "dev", "eth0")
}

// Close kills every process left in the namespaces and deletes them.
// Safe to call twice.
func (nw *Net) Close() {
	all := append([]string{nw.Server}, nw.Clients...)
	for _, ns := range all {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, p := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = killPid(pid)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, ns := range all {
		for {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			if len(bytes.TrimSpace(out)) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (nw *Net) ip(args ...string) {
	nw.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		nw.t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func skip(t fixture.TB, reason string) {
	t.Helper()
	fixture.SkipOrFail(t, reason, "NETNSTEST_REQUIRE")
}
