// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/netnstest"
	"github.com/reconciled/reconciled/test/fixtures/snmptest"
)

// piman is the Raspberry Pi rack: DHCP, TFTP and the install handshake
// from the daemon, power over SNMP from a PoE switch, and a shell Pi that
// netboots whenever its port is powered on.
var piman = demo{
	about: "a netbooting Pi (a shell script in a network namespace) installed through DHCP, TFTP and a PoE switch (snmpd)",
	setup: func(r *run) ([]string, []condition) {
		nw := netnstest.New(r, 1)
		sw := snmptest.StartWith(r, snmptest.Options{Namespace: nw.Server, ListenIP: nw.ServerIP})
		boot := make([]byte, 200_000)
		rand.Read(boot)
		r.writeFile(filepath.Join(r.dir, "tftp", "start4.elf"), string(boot), 0o644)
		img := make([]byte, 1<<20)
		rand.Read(img)
		r.writeFile(filepath.Join(r.dir, "os.img"), string(img), 0o644)
		sum := sha256.Sum256(img)
		for k, v := range map[string]any{"Iface": nw.Iface, "ServerIP": nw.ServerIP, "Subnet": nw.Subnet, "MAC": netnstest.ClientMAC(0),
			"Switch": sw.Addr, "CommunityFile": sw.CommunityFile, "ImageSHA": hex.EncodeToString(sum[:])} {
			r.values[k] = v
		}
		r.values["net"], r.values["switch"] = nw, sw
		r.writeResources()
		r.netns = nw.Server
		go bootOnPowerOn(r, nw, sw)
		return []string{"--config", filepath.Join(r.dir, "reconciled.conf")}, []condition{phaseIs("pinodes", "pi-10", "Installed")}
	},
	tryThis: func(r *run) string {
		nw := r.values["net"].(*netnstest.Net)
		sw := r.values["switch"].(*snmptest.Switch)
		return fmt.Sprintf(`The daemon runs in the network namespace %[1]s (its status page: ip netns exec %[1]s curl http://%[5]s/).
Try:
  reconcilectl get pinodes -w &          # and in another terminal:
  reconcilectl reinstall pinode/pi-10    # power off, on; the Pi netboots and installs again (its output: %[2]s/pi-boot-*.log)
  ip netns exec %[1]s reconcilectl pinode discover --switch %[3]s --community %[4]s   # the switch's MAC-to-port table
  edit installGeneration in %[2]s/resources/pinodes.yaml             # reinstalls too`, nw.Server, r.dir, sw.Addr, sw.Community, r.listen)
	},
	exercise: func(r *run) {
		sw := r.values["switch"].(*snmptest.Switch)
		before := len(sw.PortSets(1))
		req, _ := http.NewRequest(http.MethodPost, "http://reconciled/apis/reconciled.dev/v1alpha1/pinodes/pi-10/reinstall", nil)
		resp, err := r.http.Do(req)
		if err != nil {
			r.Fatal(err)
		}
		resp.Body.Close()
		r.waitFor(condition{"another power cycle of port 1", func(*run) bool { return len(sw.PortSets(1)) >= before+2 }})
		r.waitFor(receivedOne("the Pi on port 1 installed (boot 2)"))
		r.waitFor(phaseIs("pinodes", "pi-10", "Installed"))
	},
}

// bootOnPowerOn runs the shell Pi of port 1 each time the switch turns the
// port on again after turning it off, as a real Pi boots when powered.
func bootOnPowerOn(r *run, nw *netnstest.Net, sw *snmptest.Switch) {
	ctx := r.ctx()
	seen, boots := 0, 0
	for ctx.Err() == nil {
		sets := sw.PortSets(1)
		for ; seen < len(sets); seen++ {
			if sets[seen] && seen > 0 && !sets[seen-1] {
				boots++
				go bootPi(ctx, r, nw, boots)
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the switch's record of sets
	}
}

// bootPi netboots the shell Pi once, logging to pi-boot-N.log.
func bootPi(ctx context.Context, r *run, nw *netnstest.Net, n int) {
	disk := filepath.Join(r.dir, "pi-disk")
	os.MkdirAll(disk, 0o755)
	out, err := nw.Exec(ctx, nw.Clients[0], "env", "DIR="+disk, "SCRIPTS="+r.dir, "SERVER="+nw.ServerIP, "MAC="+netnstest.ClientMAC(0), "sh", filepath.Join(r.dir, "pi.sh"))
	log := filepath.Join(r.dir, fmt.Sprintf("pi-boot-%d.log", n))
	os.WriteFile(log, []byte(out), 0o644)
	result := "installed"
	switch {
	case err != nil:
		result = "failed: " + err.Error()
	case strings.Contains(out, "BOOTLOCAL"):
		result = "booted from its disk"
	}
	msg := fmt.Sprintf("the Pi on port 1 %s (boot %d)", result, n)
	fmt.Printf("\n--- %s; its output: %s\n", msg, log)
	r.notified(msg)
}
