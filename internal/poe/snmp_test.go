// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package poe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gosnmp/gosnmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/poe"
	"github.com/reconciled/reconciled/test/fixtures/snmptest"
)

// callTimeout bounds every call to the switch in these tests.
const callTimeout = 20 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

func rw(sw *snmptest.Switch) poe.Target {
	return poe.Target{Address: sw.Addr, Community: sw.Community}
}

func v3(u snmptest.V3) *poe.V3 {
	return &poe.V3{User: u.User, AuthProtocol: u.AuthProtocol, AuthPassword: u.AuthPassword,
		PrivProtocol: u.PrivProtocol, PrivPassword: u.PrivPassword}
}

func TestSetPowerOffThenOn(t *testing.T) {
	sw := snmptest.Start(t)
	ctx := ctxFor(t)
	tg := rw(sw)

	if err := poe.SetPower(ctx, tg, 2, false); err != nil {
		t.Fatal(err)
	}
	if sw.Power(2) {
		t.Error("port 2 is still on at the switch after SetPower(off)")
	}
	if on, err := poe.GetPower(ctx, tg, 2); err != nil || on {
		t.Errorf("GetPower(2) = %v, %v; want off", on, err)
	}
	if err := poe.SetPower(ctx, tg, 2, true); err != nil {
		t.Fatal(err)
	}
	if on, err := poe.GetPower(ctx, tg, 2); err != nil || !on {
		t.Errorf("GetPower(2) = %v, %v; want on", on, err)
	}
	if diff := cmp.Diff([]bool{false, true}, sw.PortSets(2)); diff != "" {
		t.Errorf("sets of port 2 (-want +got):\n%s", diff)
	}
	if n := len(sw.Sets()); n != 2 {
		t.Errorf("%d sets in all, want 2: %v", n, sw.Sets())
	}
	if !sw.Power(1) || !sw.Power(3) {
		t.Error("another port changed")
	}
}

func TestGetPowerReadsTheSwitch(t *testing.T) {
	sw := snmptest.Start(t)
	ctx := ctxFor(t)
	sw.SetPower(4, false)
	for name, tc := range map[string]struct {
		tg   poe.Target
		port int
		want bool
	}{
		"off by hand, read-write community": {rw(sw), 4, false},
		"on, read-only community":           {poe.Target{Address: sw.Addr, Community: sw.ROCommunity}, 5, true},
		"off by hand, v3":                   {poe.Target{Address: sw.Addr, V3: v3(sw.V3)}, 4, false},
		"on, read-only v3 user":             {poe.Target{Address: sw.Addr, V3: v3(sw.ReadOnlyV3)}, 1, true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := poe.GetPower(ctx, tc.tg, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("GetPower(%d) = %v, want %v", tc.port, got, tc.want)
			}
		})
	}
	if n := len(sw.Sets()); n != 0 {
		t.Errorf("reads made %d sets", n)
	}
}

func TestV3(t *testing.T) {
	sw := snmptest.Start(t)
	ctx := ctxFor(t)
	tg := poe.Target{Address: sw.Addr, V3: v3(sw.V3)}
	if err := poe.SetPower(ctx, tg, 3, false); err != nil {
		t.Fatal(err)
	}
	if err := poe.SetPower(ctx, tg, 3, true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{false, true}, sw.PortSets(3)); diff != "" {
		t.Errorf("sets of port 3 (-want +got):\n%s", diff)
	}
	entries, err := poe.Discover(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("Discover over v3: %d entries, want 4", len(entries))
	}

	// The same from a PiNode's spec, with the passwords in files.
	fromSpec, err := poe.TargetFor(v1alpha1.SwitchPort{Address: sw.Addr, Port: 6, V3: &v1alpha1.SNMPv3{
		User: sw.V3.User, AuthProtocol: "SHA", AuthPasswordFile: sw.V3.AuthPasswordFile,
		PrivProtocol: "AES", PrivPasswordFile: sw.V3.PrivPasswordFile}})
	if err != nil {
		t.Fatal(err)
	}
	if err := poe.SetPower(ctx, fromSpec, 6, false); err != nil {
		t.Fatal(err)
	}
	if sw.Power(6) {
		t.Error("port 6 is still on")
	}
}

func TestV3Errors(t *testing.T) {
	sw := snmptest.Start(t)
	ctx := ctxFor(t)
	wrongAuth := v3(sw.V3)
	wrongAuth.AuthPassword = "wrongpass99"
	unknownUser := v3(sw.V3)
	unknownUser.User = "nobody"
	wrongPriv := v3(sw.V3)
	wrongPriv.PrivPassword = "wrongpriv99"
	for name, tc := range map[string]struct {
		user    *poe.V3
		wantErr error
		wantMsg string
	}{
		"wrong auth password": {wrongAuth, poe.ErrV3Auth, "switch " + sw.Addr + ": wrong v3 user or password (the authentication password or protocol of user poeadmin does not match)"},
		"unknown user":        {unknownUser, poe.ErrV3Auth, "switch " + sw.Addr + ": wrong v3 user or password (the switch does not know user nobody)"},
		// snmpd drops what it cannot decrypt, as a wrong community.
		"wrong priv password": {wrongPriv, poe.ErrNoAnswer,
			"switch " + sw.Addr + " does not answer SNMP (set port 2 power off: timeout after 300ms, no retry; a wrong v3 privacy password or protocol gets no answer either)"},
	} {
		t.Run(name, func(t *testing.T) {
			tg := poe.Target{Address: sw.Addr, V3: tc.user, Timeout: 300 * time.Millisecond, Retries: -1}
			err := poe.SetPower(ctx, tg, 2, false)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetPower: %v, want %v", err, tc.wantErr)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("error:\n got %s\nwant %s", err, tc.wantMsg)
			}
			for _, secret := range []string{tc.user.AuthPassword, tc.user.PrivPassword} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a password: %v", err)
				}
			}
		})
	}
	if n := len(sw.Sets()); n != 0 {
		t.Errorf("%d sets went through", n)
	}
}

func TestReadOnly(t *testing.T) {
	sw := snmptest.Start(t)
	ctx := ctxFor(t)
	for name, tc := range map[string]struct {
		tg      poe.Target
		wantMsg string
	}{
		"community": {poe.Target{Address: sw.Addr, Community: sw.ROCommunity},
			"switch " + sw.Addr + ": set port 2 power off: community is read-only or not allowed to set (the switch says noAccess)"},
		"default community": {poe.Target{Address: sw.Addr},
			"switch " + sw.Addr + ": set port 2 power off: community is read-only or not allowed to set (the switch says noAccess)"},
		"v3 user": {poe.Target{Address: sw.Addr, V3: v3(sw.ReadOnlyV3)},
			"switch " + sw.Addr + ": set port 2 power off: v3 user poereader is read-only or not allowed to set (the switch says noAccess)"},
	} {
		t.Run(name, func(t *testing.T) {
			err := poe.SetPower(ctx, tc.tg, 2, false)
			if !errors.Is(err, poe.ErrReadOnly) {
				t.Fatalf("SetPower: %v, want ErrReadOnly", err)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("error:\n got %s\nwant %s", err, tc.wantMsg)
			}
		})
	}
	if !sw.Power(2) {
		t.Error("port 2 went off")
	}
	if n := len(sw.Sets()); n != 0 {
		t.Errorf("%d sets went through", n)
	}
}

func TestNoSuchPort(t *testing.T) {
	sw := snmptest.Start(t) // ports 1..8
	ctx := ctxFor(t)
	want := "switch " + sw.Addr + ": no such PoE port 9 (pethPsePortAdminEnable.1.9 does not exist)"
	err := poe.SetPower(ctx, rw(sw), 9, false)
	if !errors.Is(err, poe.ErrNoSuchPort) || err.Error() != want {
		t.Errorf("SetPower(9):\n got %v\nwant %s", err, want)
	}
	_, err = poe.GetPower(ctx, rw(sw), 9)
	if !errors.Is(err, poe.ErrNoSuchPort) || err.Error() != want {
		t.Errorf("GetPower(9):\n got %v\nwant %s", err, want)
	}
	if err := poe.SetPower(ctx, rw(sw), 0, true); !errors.Is(err, poe.ErrNoSuchPort) {
		t.Errorf("SetPower(0): %v, want ErrNoSuchPort", err)
	}
}

func TestDiscover(t *testing.T) {
	mac := func(s string) net.HardwareAddr {
		hw, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return hw
	}
	// testdata/fdb.txt of test/fixtures/snmptest, the recipe's table.
	fdb := []poe.FDBEntry{
		{MAC: mac("02:00:00:77:01:01"), Port: 1},
		{MAC: mac("dc:a6:32:00:00:02"), Port: 2},
		{MAC: mac("dc:a6:32:00:00:03"), Port: 3},
		{MAC: mac("e4:5f:01:00:00:05"), Port: 5},
	}
	t.Run("fdb.txt", func(t *testing.T) {
		sw := snmptest.Start(t)
		for name, tg := range map[string]poe.Target{
			"read-only community": {Address: sw.Addr, Community: sw.ROCommunity},
			"v3":                  {Address: sw.Addr, V3: v3(sw.V3)},
		} {
			t.Run(name, func(t *testing.T) {
				got, err := poe.Discover(ctxFor(t), tg)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(fdb, got); diff != "" {
					t.Errorf("Discover (-want +got):\n%s", diff)
				}
			})
		}
	})
	t.Run("unsorted, many", func(t *testing.T) {
		rows := []snmptest.FDBRow{{Port: 7, MAC: "b8:27:eb:00:00:07"}, {Port: 2, MAC: "dc:a6:32:00:00:22"}, {Port: 2, MAC: "dc:a6:32:00:00:02"}}
		want := []poe.FDBEntry{
			{MAC: mac("dc:a6:32:00:00:02"), Port: 2},
			{MAC: mac("dc:a6:32:00:00:22"), Port: 2},
		}
		for i := 0; i < 60; i++ { // more than one GETBULK
			m := fmt.Sprintf("02:00:00:00:01:%02x", i)
			rows = append(rows, snmptest.FDBRow{Port: 8, MAC: m})
		}
		want = append(want, poe.FDBEntry{MAC: mac("b8:27:eb:00:00:07"), Port: 7})
		for i := 0; i < 60; i++ {
			want = append(want, poe.FDBEntry{MAC: mac(fmt.Sprintf("02:00:00:00:01:%02x", i)), Port: 8})
		}
		sw := snmptest.StartWith(t, snmptest.Options{FDB: rows})
		got, err := poe.Discover(ctxFor(t), rw(sw))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Discover (-want +got):\n%s", diff)
		}
		if e, ok := poe.PortOf(got, mac("b8:27:eb:00:00:07")); !ok || e.Port != 7 {
			t.Errorf("PortOf = %v, %v; want port 7", e, ok)
		}
		if _, ok := poe.PortOf(got, mac("b8:27:eb:00:00:08")); ok {
			t.Error("PortOf found a MAC that is not there")
		}
	})
	t.Run("empty table", func(t *testing.T) {
		sw := snmptest.StartWith(t, snmptest.Options{FDB: []snmptest.FDBRow{}})
		got, err := poe.Discover(ctxFor(t), rw(sw))
		if err != nil || len(got) != 0 {
			t.Errorf("Discover = %v, %v; want no entries", got, err)
		}
	})
}

func TestFormatFDB(t *testing.T) {
	mac := func(s string) net.HardwareAddr { hw, _ := net.ParseMAC(s); return hw }
	for name, tc := range map[string]struct {
		in   []poe.FDBEntry
		want string
	}{
		"none": {nil, "MAC   PORT\n"},
		"sorted by port": {[]poe.FDBEntry{
			{MAC: mac("e4:5f:01:00:00:05"), Port: 5},
			{MAC: mac("dc:a6:32:00:00:03"), Port: 12},
			{MAC: mac("dc:a6:32:00:00:02"), Port: 2},
		}, "" +
			"MAC                 PORT\n" +
			"dc:a6:32:00:00:02   2\n" +
			"e4:5f:01:00:00:05   5\n" +
			"dc:a6:32:00:00:03   12\n"},
	} {
		t.Run(name, func(t *testing.T) {
			in := append([]poe.FDBEntry(nil), tc.in...)
			var b bytes.Buffer
			if err := poe.FormatFDB(&b, tc.in); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("FormatFDB (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tc.in); diff != "" {
				t.Errorf("FormatFDB reordered its input (-before +after):\n%s", diff)
			}
		})
	}
}

// blackHole is a UDP socket that reads and never answers.
func blackHole(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return c.LocalAddr().String()
}

func TestNoAnswer(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		addr := blackHole(t)
		start := time.Now()
		err := poe.SetPower(ctxFor(t), poe.Target{Address: addr, Community: "private"}, 2, false)
		took := time.Since(start)
		want := "switch " + addr + " does not answer SNMP (set port 2 power off: timeout after 2s, 1 retry; a wrong community gets no answer either)"
		if !errors.Is(err, poe.ErrNoAnswer) || err.Error() != want {
			t.Errorf("SetPower:\n got %v\nwant %s", err, want)
		}
		// Not before its 2 tries of 2 s; the upper bound only catches a
		// client that never gives up (a loaded machine may be slow).
		if took < 4*time.Second || took > 30*time.Second {
			t.Errorf("gave up after %v, want 2 tries of 2s", took)
		}
	})
	t.Run("discover, v3", func(t *testing.T) {
		t.Parallel()
		addr := blackHole(t)
		tg := poe.Target{Address: addr, V3: &poe.V3{User: "u", AuthPassword: "authpass1", PrivPassword: "privpass1"},
			Timeout: 100 * time.Millisecond, Retries: 2}
		_, err := poe.Discover(ctxFor(t), tg)
		want := "switch " + addr + " does not answer SNMP (walk dot1dTpFdbPort: timeout after 100ms, 2 retries; a wrong v3 privacy password or protocol gets no answer either)"
		if !errors.Is(err, poe.ErrNoAnswer) || err.Error() != want {
			t.Errorf("Discover:\n got %v\nwant %s", err, want)
		}
	})
	t.Run("context deadline first", func(t *testing.T) {
		t.Parallel()
		addr := blackHole(t)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := poe.GetPower(ctx, poe.Target{Address: addr}, 1)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, poe.ErrNoAnswer) {
			t.Errorf("GetPower: %v, want the context's deadline and ErrNoAnswer", err)
		}
		want := "switch " + addr + " does not answer SNMP within the deadline (read port 1 power): context deadline exceeded"
		if err.Error() != want {
			t.Errorf("error:\n got %v\nwant %s", err, want)
		}
		if took := time.Since(start); took > 15*time.Second { // only "it did stop"
			t.Errorf("returned after %v, the context allowed 300ms", took)
		}
	})
	t.Run("context canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := poe.SetPower(ctx, poe.Target{Address: blackHole(t)}, 1, true)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("SetPower: %v, want context.Canceled", err)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		_, err = poe.GetPower(ctxFor(t), poe.Target{Address: addr}, 1)
		if !errors.Is(err, poe.ErrNoAnswer) {
			t.Errorf("GetPower: %v, want ErrNoAnswer", err)
		}
	})
}

func TestTargetFor(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	comm := file("community", "s3cret-community\n")
	commCRLF := file("community-crlf", "s3cret-community\r\n")
	empty := file("empty", "\n")
	auth := file("auth", "authpass-s3cret\n")
	priv := file("priv", "privpass-s3cret")
	short := file("short", "abc\n")
	missing := filepath.Join(dir, "missing")
	for name, tc := range map[string]struct {
		in      v1alpha1.SwitchPort
		want    poe.Target
		wantErr string
	}{
		"community": {in: v1alpha1.SwitchPort{Address: "10.0.0.5:161", Community: "private"},
			want: poe.Target{Address: "10.0.0.5:161", Community: "private"}},
		"none": {in: v1alpha1.SwitchPort{Address: "10.0.0.5"}, want: poe.Target{Address: "10.0.0.5"}},
		"communityFile": {in: v1alpha1.SwitchPort{Address: "sw", CommunityFile: comm},
			want: poe.Target{Address: "sw", Community: "s3cret-community"}},
		"communityFile with CRLF": {in: v1alpha1.SwitchPort{Address: "sw", CommunityFile: commCRLF},
			want: poe.Target{Address: "sw", Community: "s3cret-community"}},
		"v3": {in: v1alpha1.SwitchPort{Address: "sw", V3: &v1alpha1.SNMPv3{User: "poeadmin", AuthProtocol: "SHA256",
			AuthPasswordFile: auth, PrivProtocol: "AES256", PrivPasswordFile: priv}},
			want: poe.Target{Address: "sw", V3: &poe.V3{User: "poeadmin", AuthProtocol: "SHA256", AuthPassword: "authpass-s3cret",
				PrivProtocol: "AES256", PrivPassword: "privpass-s3cret"}}},
		"v3 auth only": {in: v1alpha1.SwitchPort{Address: "sw", V3: &v1alpha1.SNMPv3{User: "u", AuthPasswordFile: auth}},
			want: poe.Target{Address: "sw", V3: &poe.V3{User: "u", AuthPassword: "authpass-s3cret"}}},
		"missing communityFile": {in: v1alpha1.SwitchPort{Address: "sw", CommunityFile: missing},
			wantErr: "communityFile: open " + missing + ": no such file or directory"},
		"empty communityFile": {in: v1alpha1.SwitchPort{Address: "sw", CommunityFile: empty},
			wantErr: "communityFile " + empty + ": the file is empty"},
		"missing authPasswordFile": {in: v1alpha1.SwitchPort{Address: "sw", V3: &v1alpha1.SNMPv3{User: "u", AuthPasswordFile: missing}},
			wantErr: "v3 authPasswordFile: open " + missing + ": no such file or directory"},
		"short password": {in: v1alpha1.SwitchPort{Address: "sw", V3: &v1alpha1.SNMPv3{User: "u", AuthPasswordFile: short}},
			wantErr: "v3: the authentication password is shorter than 8 characters"},
		"priv without auth": {in: v1alpha1.SwitchPort{Address: "sw", V3: &v1alpha1.SNMPv3{User: "u", PrivPasswordFile: priv}},
			wantErr: "v3: a privacy password needs an authentication password too"},
		"bad protocol": {in: v1alpha1.SwitchPort{Address: "sw", V3: &v1alpha1.SNMPv3{User: "u", AuthProtocol: "SHA1", AuthPasswordFile: auth}},
			wantErr: `v3 authProtocol "SHA1": want MD5, SHA, SHA224, SHA256, SHA384 or SHA512`},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := poe.TargetFor(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("TargetFor: %v, want error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("TargetFor (-want +got):\n%s", diff)
			}
			for _, s := range []string{fmt.Sprint(got), fmt.Sprintf("%+v", got), fmt.Sprintf("%#v", got), fmt.Sprint(got.V3)} {
				if strings.Contains(s, "s3cret") {
					t.Errorf("printing the target shows a secret: %s", s)
				}
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	for name, tc := range map[string]struct {
		in   poe.Target
		want string
	}{
		"v2c, default port": {poe.Target{Address: "10.0.0.5", Community: "private"}, "10.0.0.5:161 (v2c)"},
		"v2c, ipv6":         {poe.Target{Address: "[fd00::5]:1161"}, "[fd00::5]:1161 (v2c)"},
		"v3 authPriv": {poe.Target{Address: "sw:161", V3: &poe.V3{User: "poeadmin", AuthPassword: "x", PrivPassword: "y"}},
			"sw:161 (v3 user poeadmin, authPriv SHA/AES)"},
		"v3 authNoPriv": {poe.Target{Address: "sw:161", V3: &poe.V3{User: "u", AuthProtocol: "md5", AuthPassword: "x"}},
			"sw:161 (v3 user u, authNoPriv MD5)"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := tc.in.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

// fakeAgent answers SNMPv2c requests on a loopback port with answer's
// response (nil: no answer), for answers a real snmpd does not give.
func fakeAgent(t *testing.T, answer func(req *gosnmp.SnmpPacket) *gosnmp.SnmpPacket) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dec := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := dec.SnmpDecodePacket(buf[:n])
			if err != nil {
				continue
			}
			res := answer(req)
			if res == nil {
				continue
			}
			res.Version, res.Community, res.RequestID, res.PDUType = req.Version, req.Community, req.RequestID, gosnmp.GetResponse
			b, err := res.MarshalMsg()
			if err != nil {
				t.Errorf("fake agent: %v", err)
				return
			}
			c.WriteTo(b, from)
		}
	}()
	return c.LocalAddr().String()
}

func TestOddAnswers(t *testing.T) {
	oid := poe.OIDAdminEnable + ".1.1"
	value := func(typ gosnmp.Asn1BER, v any) func(*gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
		return func(req *gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
			return &gosnmp.SnmpPacket{Variables: []gosnmp.SnmpPDU{{Name: oid, Type: typ, Value: v}}}
		}
	}
	for name, tc := range map[string]struct {
		answer  func(*gosnmp.SnmpPacket) *gosnmp.SnmpPacket
		set     bool
		wantErr error
		wantMsg string
	}{
		"string instead of integer": {answer: value(gosnmp.OctetString, []byte("on")), wantErr: poe.ErrWrongType,
			wantMsg: ": read port 1 power: pethPsePortAdminEnable.1.1 is OctetString, want Integer: wrong type"},
		"integer out of range": {answer: value(gosnmp.Integer, 7), wantErr: poe.ErrWrongType,
			wantMsg: ": read port 1 power: pethPsePortAdminEnable.1.1 = 7, want 1 (true) or 2 (false): wrong type"},
		"no POWER-ETHERNET-MIB": {answer: value(gosnmp.NoSuchObject, nil), wantErr: poe.ErrNoSuchPort,
			wantMsg: ": no such PoE port 1 (the switch has no POWER-ETHERNET-MIB pethPsePortAdminEnable)"},
		"set: wrongType": {set: true, wantErr: poe.ErrWrongType,
			answer: func(req *gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
				return &gosnmp.SnmpPacket{Error: gosnmp.WrongType, ErrorIndex: 1, Variables: req.Variables}
			},
			wantMsg: ": set port 1 power off: wrong type (the switch says wrongType)"},
		"set: genErr": {set: true, wantErr: poe.ErrRefused,
			answer: func(req *gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
				return &gosnmp.SnmpPacket{Error: gosnmp.GenErr, ErrorIndex: 1, Variables: req.Variables}
			},
			wantMsg: ": set port 1 power off: switch refused the request (genErr)"},
		"set accepted, never applied": {set: true, wantErr: poe.ErrNotConfirmed, answer: value(gosnmp.Integer, 1),
			wantMsg: ": set port 1 power off: power state not confirmed (it still reads on after 5 reads)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := poe.Target{Address: fakeAgent(t, tc.answer), Community: "private"}
			var err error
			if tc.set {
				err = poe.SetPower(ctxFor(t), tg, 1, false)
			} else {
				_, err = poe.GetPower(ctxFor(t), tg, 1)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if want := "switch " + tg.Address + tc.wantMsg; err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
		})
	}
}
