// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package netnstest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestNet(t *testing.T) {
	nw := New(t, 2)
	nw.SetClientAddr(0, "10.77.0.10")
	nw.SetClientAddr(1, "10.77.0.11")
	ctx := context.Background()
	for _, ns := range nw.Clients {
		if out, err := nw.Exec(ctx, ns, "busybox", "ping", "-c1", "-W2", nw.ServerIP); err != nil {
			t.Fatalf("%s cannot reach the server: %v\n%s", ns, err, out)
		}
	}
	out, err := nw.Exec(ctx, nw.Clients[1], "ip", "link", "show", "eth0")
	if err != nil || !strings.Contains(out, ClientMAC(1)) {
		t.Fatalf("client 1 MAC: %v %s", err, out)
	}
	nw.Close()
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range append([]string{nw.Server}, nw.Clients...) {
		if strings.Contains(string(list), ns) {
			t.Errorf("namespace %s still there after Close:\n%s", ns, list)
		}
	}
	nw.Close() // twice is harmless
}
