// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package snmptest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gosnmp/gosnmp"

	"github.com/reconciled/reconciled/internal/fixture"
	"github.com/reconciled/reconciled/internal/netnstest"
)

func client(t *testing.T, addr, community string) *gosnmp.GoSNMP {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Community: community, Version: gosnmp.Version2c,
		Timeout: time.Second, Retries: 1}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

func adminOID(port int) string { return "." + OIDAdminEnable + ".1." + strconv.Itoa(port) }

func TestSwitch(t *testing.T) {
	sw := Start(t)
	g := client(t, sw.Addr, sw.Community)
	get := func(port int) int {
		t.Helper()
		res, err := g.Get([]string{adminOID(port)})
		if err != nil {
			t.Fatal(err)
		}
		return int(gosnmp.ToBigInt(res.Variables[0].Value).Int64())
	}

	// Many sets in a row, each read back: the helper's pipe stays in step
	// (snmpd sends a blank line after every set).
	want := []bool{}
	for i := 0; i < 10; i++ {
		on := i%2 == 1
		v := 2
		if on {
			v = 1
		}
		res, err := g.Set([]gosnmp.SnmpPDU{{Name: adminOID(3), Type: gosnmp.Integer, Value: v}})
		if err != nil || res.Error != gosnmp.NoError {
			t.Fatalf("set %d: %v %v", i, err, res.Error)
		}
		if got := get(3); got != v {
			t.Fatalf("after set %d to %d the switch reads %d", i, v, got)
		}
		if sw.Power(3) != on {
			t.Fatalf("after set %d Power(3) = %v", i, !on)
		}
		want = append(want, on)
	}
	if diff := cmp.Diff(want, sw.PortSets(3)); diff != "" {
		t.Errorf("PortSets(3) (-want +got):\n%s", diff)
	}
	sets := sw.Sets() // 10, or more if a SET was sent again after a timeout
	if len(sets) < 10 || sets[0].Port != 3 || sets[0].On || sets[0].At.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("Sets() = %v", sets)
	}

	// The read-only community may not set.
	ro := client(t, sw.Addr, sw.ROCommunity)
	res, err := ro.Set([]gosnmp.SnmpPDU{{Name: adminOID(3), Type: gosnmp.Integer, Value: 2}})
	if err != nil || res.Error != gosnmp.NoAccess {
		t.Errorf("set with the read-only community: %v, %v; want noAccess", err, res.Error)
	}

	// By hand.
	sw.SetPower(5, false)
	if got := get(5); got != 2 {
		t.Errorf("port 5 reads %d after SetPower(5, false)", got)
	}
	if len(sw.Sets()) != len(sets) {
		t.Error("SetPower was recorded as a SET")
	}

	// A new forwarding table is seen at once.
	sw.SetFDB([]FDBRow{{Port: 4, MAC: "DC:A6:32:AA:BB:CC"}})
	walked, err := g.BulkWalkAll("." + OIDFdbPort)
	if err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0].Name != "."+OIDFdbPort+".220.166.50.170.187.204" || gosnmp.ToBigInt(walked[0].Value).Int64() != 4 {
		t.Errorf("walk after SetFDB: %v", walked)
	}

	sw.Stop()
	g.Timeout, g.Retries = 200*time.Millisecond, 0
	if _, err := g.Get([]string{adminOID(1)}); err == nil {
		t.Error("the stopped switch answered")
	}

	// Back on the same address, with the power and the SETs from before.
	addr := sw.Addr
	sw.Restart()
	if sw.Addr != addr {
		t.Errorf("restarted on %s, want %s", sw.Addr, addr)
	}
	g.Timeout, g.Retries = time.Second, 1
	if got := get(5); got != 2 {
		t.Errorf("port 5 reads %d after the restart, want 2 (off) as before", got)
	}
	if res, err := g.Set([]gosnmp.SnmpPDU{{Name: adminOID(3), Type: gosnmp.Integer, Value: 2}}); err != nil || res.Error != gosnmp.NoError {
		t.Fatalf("set after the restart: %v", err)
	}
	if got := sw.Sets(); len(got) <= len(sets) || got[len(got)-1].Port != 3 || got[len(got)-1].On {
		t.Errorf("Sets() after the restart = %v, want the %d from before and port 3 off", got, len(sets))
	}
}

func TestSwitchInNamespace(t *testing.T) {
	nw := netnstest.New(t, 1)
	if _, err := exec.LookPath("snmpget"); err != nil {
		fixture.SkipOrFail(t, "snmpget (Debian package snmp) is not installed")
	}
	nw.SetClientAddr(0, "10.77.0.10")
	sw := StartWith(t, Options{Namespace: nw.Server, ListenIP: nw.ServerIP, Ports: 2})
	if sw.Addr != "10.77.0.1:161" {
		t.Errorf("Addr = %s", sw.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	snmp := func(tool string, args ...string) string {
		t.Helper()
		// MIBS= and SNMP_PERSISTENT_DIR keep the client off /usr/share/snmp and /var/lib/snmp.
		argv := append([]string{"env", "MIBS=", "SNMP_PERSISTENT_DIR=" + t.TempDir(), tool, "-On", "-t", "2", "-r", "1"}, args...)
		out, err := nw.Exec(ctx, nw.Clients[0], argv...)
		if err != nil {
			t.Fatalf("%s: %v: %s", tool, err, out)
		}
		return out
	}
	v3 := []string{"-v3", "-u", sw.V3.User, "-l", "authPriv", "-a", "SHA", "-A", sw.V3.AuthPassword, "-x", "AES", "-X", sw.V3.PrivPassword}
	if out := snmp("snmpset", append(v3, sw.Addr, adminOID(2), "i", "2")...); !strings.Contains(out, "INTEGER: 2") {
		t.Errorf("snmpset: %s", out)
	}
	if out := snmp("snmpget", "-v2c", "-c", sw.ROCommunity, sw.Addr, adminOID(2)); !strings.Contains(out, "INTEGER: 2") {
		t.Errorf("snmpget: %s", out)
	}
	if diff := cmp.Diff([]bool{false}, sw.PortSets(2)); diff != "" {
		t.Errorf("PortSets(2) (-want +got):\n%s", diff)
	}
}
