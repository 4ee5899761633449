// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqtttest

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/internal/fixture"
)

func TestBrokerAuthStopRestart(t *testing.T) {
	b := Start(t)
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		fixture.SkipOrFail(t, "mosquitto-clients is not installed (make test installs it)")
	}
	pub := func(args ...string) error {
		out, err := exec.Command("mosquitto_pub", append(args, "-t", "t/x", "-m", "hello", "-q", "1", "-r")...).CombinedOutput()
		if err != nil {
			t.Logf("mosquitto_pub: %v: %s", err, out)
		}
		return err
	}
	sub := func() string {
		out, err := exec.Command("mosquitto_sub", append(b.ClientArgs(), "-t", "t/x", "-C", "1", "-W", "10")...).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_sub: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := pub(b.ClientArgs()...); err != nil {
		t.Fatal("publishing with the account failed")
	}
	if got := sub(); got != "hello" {
		t.Errorf("retained message = %q, want hello", got)
	}
	host, port, _ := net.SplitHostPort(b.Addr)
	if pub("-h", host, "-p", port) == nil {
		t.Error("an anonymous client was accepted")
	}
	if pub("-h", host, "-p", port, "-u", b.Username, "-P", "wrong") == nil {
		t.Error("a wrong password was accepted")
	}

	b.Stop()
	if c, err := net.Dial("tcp", b.Addr); err == nil {
		c.Close()
		t.Fatal("the broker still accepts connections after Stop")
	}
	b.Restart()
	if err := pub(b.ClientArgs()...); err != nil {
		t.Fatal("publishing after Restart failed")
	}
}
