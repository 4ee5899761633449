// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

// netns is a network namespace joined to the host by a veth pair: the
// host side has 10.77.<n>.1/30, the namespace side 10.77.<n>.2/30. Traffic
// to it never leaves the machine.
type netns struct {
	t                 *testing.T
	name, host, inner string
	hostIP, innerIP   string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		fixtures.SkipOrFail(t, "network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fixtures.SkipOrFail(t, "iproute2 is not installed")
	}
	n := os.Getpid() % 250
	ns := &netns{t: t, name: fmt.Sprintf("rcd-e2e-%d", os.Getpid()), host: fmt.Sprintf("rcdh%d", os.Getpid()%100000), inner: "rcdn0",
		hostIP: fmt.Sprintf("10.77.%d.1", n), innerIP: fmt.Sprintf("10.77.%d.2", n)}
	t.Cleanup(ns.delete)
	ns.ip("netns", "add", ns.name)
	ns.ip("link", "add", ns.host, "type", "veth", "peer", "name", ns.inner)
	ns.ip("link", "set", ns.inner, "netns", ns.name)
	ns.ip("addr", "add", ns.hostIP+"/30", "dev", ns.host)
	ns.ip("link", "set", ns.host, "up")
	ns.ip("-n", ns.name, "link", "set", "lo", "up")
	ns.ip("-n", ns.name, "addr", "add", ns.innerIP+"/30", "dev", ns.inner)
	ns.ip("-n", ns.name, "link", "set", ns.inner, "up")
	return ns
}

func (ns *netns) ip(args ...string) {
	ns.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		ns.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (ns *netns) delete() {
	if out, _ := exec.Command("ip", "netns", "pids", ns.name).Output(); len(out) > 0 {
		for _, pid := range strings.Fields(string(out)) {
			exec.Command("kill", "-9", pid).Run()
		}
	}
	exec.Command("ip", "netns", "del", ns.name).Run()
	exec.Command("ip", "link", "del", ns.host).Run()
}

// A Link to a host in a network namespace goes Down when the test takes
// the namespace's interface down, and Up when it comes back.
func TestLinkAcrossNetns(t *testing.T) {
	ns := newNetns(t)
	srv := exec.Command("ip", "netns", "exec", ns.name, "python3", "-m", "http.server", "7070", "--bind", ns.innerIP, "--directory", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	e := newEnv(t)
	e.start()
	e.write("remote.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: remote}
spec:
  http: {url: "http://%s:7070/"}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 3
`, ns.innerIP))
	base := e.waitLink("remote", "Up").Status.Transitions // the server may have started after the first probes
	ns.ip("-n", ns.name, "link", "set", ns.inner, "down")
	down := e.waitLink("remote", "Down")
	if down.Status.LastError == "" {
		t.Fatal("Down without lastError")
	}
	ns.ip("-n", ns.name, "link", "set", ns.inner, "up")
	up := e.waitLink("remote", "Up")
	if up.Status.Transitions != base+2 {
		t.Fatalf("transitions %d, want %d", up.Status.Transitions, base+2)
	}
}
