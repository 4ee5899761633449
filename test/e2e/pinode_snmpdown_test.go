// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// piNodeJSON is the subset of a PiNode the tests read from
// `reconcilectl get pinode/NAME -o json`.
type piNodeJSON struct {
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
	Spec struct {
		InstallGeneration int64 `json:"installGeneration"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration  int64  `json:"observedGeneration"`
		Phase               string `json:"phase"`
		InstalledGeneration *int64 `json:"installedGeneration"`
		Conditions          []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (n piNodeJSON) ready() (status, reason, message string) {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

func (n piNodeJSON) installed() int64 {
	if n.Status.InstalledGeneration == nil {
		return 0
	}
	return *n.Status.InstalledGeneration
}

// getPiNode reads one PiNode through the CLI, failing the test when the
// daemon does not answer.
func (e *env) getPiNode(name string) piNodeJSON {
	e.t.Helper()
	var n piNodeJSON
	if err := json.Unmarshal([]byte(e.ctl("get", "pinode/"+name, "-o", "json")), &n); err != nil {
		e.t.Fatalf("get pinode/%s -o json: %v", name, err)
	}
	return n
}

// powerFailures returns the times of the daemon's "reconcile failed;
// retrying with backoff" log lines for PiNode name in log, with their
// error text.
func powerFailures(t *testing.T, log, name string) (at []time.Time, errs []string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="reconcile failed; retrying with backoff"`) || !strings.Contains(line, "kind=PiNode") ||
			!strings.Contains(line, " name="+name+" ") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("daemon log line without a time: %q", line)
		}
		at = append(at, tm)
		_, msg, _ := strings.Cut(line, " err=")
		errs = append(errs, msg)
	}
	return at, errs
}

// The SNMP agent of the PoE switch goes away (snmpd stops; the switch's
// address answers ICMP port unreachable, as a crashed or rebooting agent
// does) just before a reinstall is asked for. The daemon must keep
// answering, show the switch error in the PiNode's status, retry with
// backoff instead of giving up or calling the Pi installed, and finish the
// reinstall by itself once the agent is back on the same address.
//
// bootTimeout (60 s) is also how long the daemon tries a switch that does
// not answer before it fails the install; the outage here is shorter.
func TestPiNodeSNMPDown(t *testing.T) {
	l, piFile := installedPi(t, "60s")
	e, sw := l.e, l.sw
	setsBefore := len(sw.Sets())

	// The agent goes away; then the spec asks for install 2.
	sw.Stop()
	logFrom := len(e.log.String())
	editAt := time.Now()
	if err := os.WriteFile(piFile, []byte(l.pinode(0, 2)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The status names the switch and what is wrong with it, and nothing
	// is lost: the spec edit is seen, generation 1 is still the installed one.
	var down piNodeJSON
	e.eventually("the switch error in the PiNode's status", func() bool {
		down = e.getPiNode("pi-10")
		_, reason, msg := down.ready()
		return down.Spec.InstallGeneration == 2 && reason == "SwitchError" && msg != ""
	})
	if st, _, msg := down.ready(); st != "False" || !strings.Contains(msg, sw.Addr) || !strings.Contains(msg, "does not answer SNMP") {
		t.Fatalf("Ready condition while the switch is down: %s %q; want False, naming the switch %s and that it does not answer", st, msg, sw.Addr)
	}
	if down.Status.Phase != "PoweringOff" || down.installed() != 1 || down.Status.ObservedGeneration != down.Metadata.Generation {
		t.Fatalf("while the switch is down: phase %s, installedGeneration %d, observedGeneration %d of %d; want PoweringOff, 1 and the edit observed",
			down.Status.Phase, down.installed(), down.Status.ObservedGeneration, down.Metadata.Generation)
	}

	// The daemon keeps trying, backing off, and answers all along.
	const wantFailures = 10
	var failAt []time.Time
	var failErrs []string
	e.eventually(fmt.Sprintf("%d failed power attempts", wantFailures), func() bool {
		if out := e.ctl("get", "pinode"); !strings.Contains(out, "pi-10") {
			t.Fatalf("get pinode while the switch is down:\n%s", out)
		}
		failAt, failErrs = powerFailures(t, e.log.String()[logFrom:], "pi-10")
		return len(failAt) >= wantFailures
	})
	for i, msg := range failErrs {
		if !strings.Contains(msg, sw.Addr) {
			t.Fatalf("failed attempt %d logs %s, which does not name the switch %s", i+1, msg, sw.Addr)
		}
	}
	first, last := failAt[1].Sub(failAt[0]), failAt[len(failAt)-1].Sub(failAt[len(failAt)-2])
	if last < 4*first || last < 100*time.Millisecond {
		t.Fatalf("no backoff between the failed attempts: first gap %s, last gap %s (%v)", first, last, failAt)
	}
	n := e.getPiNode("pi-10")
	if _, reason, _ := n.ready(); n.Status.Phase != "PoweringOff" || reason != "SwitchError" || n.installed() != 1 {
		t.Fatalf("after %d failed attempts: phase %s (%s), installedGeneration %d; want PoweringOff (SwitchError), 1",
			len(failAt), n.Status.Phase, reason, n.installed())
	}
	if s := e.read("pi.yaml"); !strings.Contains(s, "installGeneration: 2") || !strings.Contains(s, "installedGeneration: 1") || strings.Contains(s, "phase: Installed") {
		t.Fatalf("the resource file while the switch is down:\n%s", s)
	}
	if b, _ := os.ReadFile(l.alertFile); strings.Contains(string(b), "PiNodeInstallFailed") {
		t.Fatalf("the install was failed during a %s outage (bootTimeout 60s):\n%s", time.Since(editAt).Round(time.Millisecond), b)
	}
	if e.daemon == nil || !alive(e.daemon.Process.Pid) {
		t.Fatal("the daemon exited")
	}
	if got := len(sw.Sets()); got != setsBefore || !sw.Power(1) {
		t.Fatalf("the stopped switch changed: %d sets (had %d), port 1 on %v", got, setsBefore, sw.Power(1))
	}

	// The agent comes back on the same address: the daemon's next try
	// power-cycles the port and the reinstall goes on by itself.
	addr := sw.Addr
	sw.Restart()
	backAt := time.Now()
	if sw.Addr != addr {
		t.Fatalf("the switch came back on %s, not %s", sw.Addr, addr)
	}
	e.eventually("the power cycle after the agent is back", func() bool { return fmt.Sprint(sw.PortSets(1)) == "[false true false true]" })
	cycledAt := time.Now()
	after := sw.Sets()[setsBefore:]
	if len(after) < 2 || after[0].Port != 1 || after[0].On || after[0].At.Before(backAt.Add(-time.Second)) {
		t.Fatalf("sets after the agent came back: %v", after)
	}
	failAt, _ = powerFailures(t, e.log.String()[logFrom:], "pi-10")
	out, err := l.runPi(0)
	if err != nil || !strings.Contains(out, "LEASE 10.77.0.10") || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("the Pi's reinstall after the outage: %v\n%s", err, out)
	}
	e.eventually("generation 2 Installed", func() bool {
		n = e.getPiNode("pi-10")
		st, _, _ := n.ready()
		return n.Status.Phase == "Installed" && n.installed() == 2 && st == "True" && n.Status.ObservedGeneration == n.Metadata.Generation
	})
	installedAt := time.Now()
	if s := e.read("pi.yaml"); !strings.Contains(s, "phase: Installed") || !strings.Contains(s, "installedGeneration: 2") {
		t.Fatalf("the resource file after the reinstall:\n%s", s)
	}
	if b, _ := os.ReadFile(l.alertFile); strings.Contains(string(b), "PiNodeInstallFailed") {
		t.Fatalf("an install failed alert for an outage the daemon rode out:\n%s", b)
	}
	gaps := make([]string, 0, len(failAt))
	for i := 1; i < len(failAt); i++ {
		gaps = append(gaps, failAt[i].Sub(failAt[i-1]).Round(time.Millisecond).String())
	}
	_, _, downMsg := down.ready()
	t.Logf("FIGURE snmp-down: agent down %s, %d failed power attempts (backoff gaps %s), status %q; "+
		"after the agent returned: power cycle in %s, Installed gen 2 in %s (incl. the Pi's netboot)",
		backAt.Sub(editAt).Round(time.Millisecond), len(failAt), strings.Join(gaps, " "), downMsg,
		cycledAt.Sub(backAt).Round(time.Millisecond), installedAt.Sub(backAt).Round(time.Millisecond))
}

// An SNMP agent that stays away longer than bootTimeout fails the install,
// as the controller documents ("instead of retrying in silence"): phase
// Failed, reason SwitchError naming the switch and port, the
// PiNodeInstallFailed alert, generation 1 still the installed one. Like a
// boot timeout, it is retried when asked: once the agent is back,
// `reconcilectl reinstall` finishes the install.
func TestPiNodeSNMPDownPastBootTimeout(t *testing.T) {
	l, piFile := installedPi(t, "3s")
	e, sw := l.e, l.sw

	sw.Stop()
	editAt := time.Now()
	if err := os.WriteFile(piFile, []byte(l.pinode(0, 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	var n piNodeJSON
	e.eventually("Failed with SwitchError", func() bool {
		n = e.getPiNode("pi-10")
		return n.Spec.InstallGeneration == 2 && n.Status.Phase == "Failed"
	})
	failedAt := time.Now()
	if st, reason, msg := n.ready(); st != "False" || reason != "SwitchError" || !strings.Contains(msg, sw.Addr) ||
		!strings.Contains(msg, "port 1") || !strings.Contains(msg, "does not answer") || n.installed() != 1 {
		t.Fatalf("after the switch stayed away: Ready %s %s %q, installedGeneration %d; want False SwitchError naming %s, port 1 and that it does not answer, and 1",
			st, reason, msg, n.installed(), sw.Addr)
	}
	if d := failedAt.Sub(editAt); d < 3*time.Second {
		t.Fatalf("failed after %s, before bootTimeout (3s)", d)
	}
	e.eventually("PiNodeInstallFailed alert", func() bool {
		b, _ := os.ReadFile(l.alertFile)
		return strings.Contains(string(b), "PiNodeInstallFailed")
	})
	if b, _ := os.ReadFile(l.alertFile); !strings.Contains(string(b), sw.Addr) {
		t.Errorf("the PiNodeInstallFailed alert does not name the switch %s:\n%s", sw.Addr, b)
	}

	sw.Restart()
	if out := e.ctl("reinstall", "pinode/pi-10"); !strings.Contains(out, "reinstall requested") {
		t.Fatalf("reinstall: %s", out)
	}
	e.eventually("the power cycle after the reinstall", func() bool { return fmt.Sprint(sw.PortSets(1)) == "[false true false true]" })
	if out, err := l.runPi(0); err != nil || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("the Pi's reinstall: %v\n%s", err, out)
	}
	e.eventually("generation 2 Installed", func() bool {
		n = e.getPiNode("pi-10")
		return n.Status.Phase == "Installed" && n.installed() == 2
	})
	t.Logf("FIGURE snmp-down past bootTimeout: Failed (SwitchError, alert) %s after the edit with bootTimeout 3s", failedAt.Sub(editAt).Round(time.Millisecond))
}

// installedPi starts a pi lab with one Pi and installs generation 1 on it,
// as TestPiNodeReinstall does. It returns the lab and the PiNode's file.
func installedPi(t *testing.T, bootTimeout string) (*piLab, string) {
	t.Helper()
	l := newPiLab(t, 1, 1<<20, bootTimeout)
	piFile := l.e.write("pi.yaml", l.pinode(0, 1))
	l.e.eventually("port 1 power-cycled", func() bool { return fmt.Sprint(l.sw.PortSets(1)) == "[false true]" })
	if out, err := l.runPi(0); err != nil || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("the Pi's first install: %v\n%s", err, out)
	}
	l.e.eventually("generation 1 Installed", func() bool {
		n := l.e.getPiNode("pi-10")
		return n.Status.Phase == "Installed" && n.installed() == 1
	})
	return l, piFile
}
