// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"strings"
	"testing"
	"time"
)

// The defaults are written once, here: a netboot: section with only what
// is required gets the ports and durations INTERFACE.md documents.
func TestNetbootDefaults(t *testing.T) {
	c := Config{Netboot: &Netboot{Interface: "eth1", ServerIP: "172.16.7.1", Subnet: "172.16.7.0/24", TFTPRoot: "/srv/netboot", HTTPAddr: ":8070"}}
	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	v, err := c.Netboot.Values()
	if err != nil {
		t.Fatal(err)
	}
	if v.DHCPPort != 67 || v.TFTPPort != 69 || v.LeaseTime != time.Hour || v.PowerOffTime != 5*time.Second ||
		v.BootTimeout != 5*time.Minute || v.InstallTimeout != 30*time.Minute {
		t.Fatalf("defaults: %+v", v)
	}
	if v.ServerIP.String() != "172.16.7.1" || v.Subnet.String() != "172.16.7.0/24" || v.Router != nil {
		t.Fatalf("addresses: %+v", v)
	}
	// Defaulting twice changes nothing.
	before := *c.Netboot
	c.Default()
	if *c.Netboot != before {
		t.Fatalf("Default is not idempotent: %+v, then %+v", before, *c.Netboot)
	}
}

// Every problem of a section is reported at once, each with its field.
func TestNetbootValidateReportsEveryField(t *testing.T) {
	n := &Netboot{ServerIP: "nope", Subnet: "10.0.0.0/33", TFTPRoot: "relative", HTTPAddr: "8070", BootTimeout: "-1s", DHCPPort: 70000}
	n.Default()
	_, err := n.Values()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, f := range []string{"netboot.interface", "netboot.serverIP", "netboot.subnet", "netboot.tftpRoot", "netboot.httpAddr", "netboot.bootTimeout", "netboot.dhcpPort"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%s not reported in: %v", f, err)
		}
	}
}
