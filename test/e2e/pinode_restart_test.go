// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// piman's "restart PORT": an installed Pi is power-cycled over SNMP (off,
// powerOffTime, on, read back) by `reconcilectl restart pinode/NAME`, by
// its switch port, and by a change of the restartedAt annotation, without
// being reinstalled: the Pi boots from its disk and installedGeneration
// stays. A switch that does not answer gives SwitchError, and the cycle
// completes once it is back.
func TestPiNodePowerCycle(t *testing.T) {
	l := newPiLab(t, 1, 1<<20, "30s")
	e, sw := l.e, l.sw
	piFile := e.write("pi.yaml", l.pinode(0, 1))
	e.eventually("port 1 power-cycled for the install", func() bool { return fmt.Sprint(sw.PortSets(1)) == "[false true]" })
	if out, err := l.runPi(0); err != nil || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("the Pi's install: %v\n%s", err, out)
	}
	e.eventually("Installed", func() bool {
		s := e.read("pi.yaml")
		return strings.Contains(s, "phase: Installed") && strings.Contains(s, "installedGeneration: 1")
	})

	cycled := func(n int, trigger string) {
		t.Helper()
		want := strings.TrimSuffix(strings.Repeat("false true ", n+1), " ")
		e.eventually(fmt.Sprintf("power cycle %d on the switch", n), func() bool { return fmt.Sprint(sw.PortSets(1)) == "["+want+"]" })
		e.eventually("lastPowerCycle Succeeded", func() bool {
			s := e.read("pi.yaml")
			return strings.Contains(s, "result: Succeeded") && strings.Contains(s, "trigger: "+trigger) && strings.Contains(s, "finishedAt:")
		})
		s := e.read("pi.yaml")
		if !strings.Contains(s, "phase: Installed") || !strings.Contains(s, "installedGeneration: 1") {
			t.Fatalf("after power cycle %d the node is no longer Installed with generation 1:\n%s", n, s)
		}
		// No reinstall: the Pi that comes up boots from its disk.
		if out, err := l.runPi(0); err != nil || !strings.Contains(out, "BOOTLOCAL") {
			t.Fatalf("boot after power cycle %d: %v\n%s", n, err, out)
		}
	}

	if out := e.ctl("restart", "pinode/pi-10"); !strings.Contains(out, "pinode/pi-10 power cycle requested") {
		t.Fatalf("restart: %q", out)
	}
	cycled(1, "reconcilectl restart")
	if out := e.ctl("describe", "pinode/pi-10"); !strings.Contains(out, "PowerCycled") {
		t.Errorf("describe shows no PowerCycled event:\n%s", out)
	}

	// As piman's users type it: by the switch port.
	if out := e.ctl("restart", "pinode", "--switch-port", "1"); !strings.Contains(out, "pinode/pi-10 power cycle requested") {
		t.Fatalf("restart --switch-port: %q", out)
	}
	cycled(2, "reconcilectl restart")
	if _, stderr, code := e.ctlQuiet("restart", "pinode", "--switch-port", "9"); code != 1 || !strings.Contains(stderr, "no pinode on switch port 9") {
		t.Fatalf("restart of an empty port: exit %d, %s", code, stderr)
	}

	// The annotation (kubectl rollout restart's way).
	spec := l.pinode(0, 1)
	os.WriteFile(piFile, []byte(strings.Replace(spec, "metadata: {name: pi-10}", "metadata:\n  name: pi-10\n  annotations: {reconciled.dev/restartedAt: \"2026-12-05T12:00:00Z\"}", 1)), 0o644)
	cycled(3, "annotation reconciled.dev/restartedAt=2026-12-05T12:00:00Z")

	// A switch that does not answer: the usual SwitchError, then the
	// cycle goes through once it is back.
	sw.Stop()
	e.ctl("restart", "pinode/pi-10")
	e.eventually("SwitchError while the switch is silent", func() bool {
		p, _, _ := e.ctlQuiet("get", "pinode/pi-10", "-o", "jsonpath={.status.conditions[0].reason} {.status.conditions[0].message}")
		return strings.HasPrefix(p, "SwitchError ") && strings.Contains(p, sw.Addr)
	})
	sw.Restart()
	cycled(4, "reconcilectl restart")
}
