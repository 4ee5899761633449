// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/netboot/handshake"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// fakePower records power changes per port.
type fakePower struct {
	mu     sync.Mutex
	calls  []string
	fail   error
	failOn error // fails only switching on
	port   int   // what Locate reports
}

func (f *fakePower) SetPower(_ context.Context, sw v1alpha1.SwitchPort, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if on && f.failOn != nil {
		return f.failOn
	}
	f.calls = append(f.calls, fmt.Sprintf("%d:%v", sw.Port, map[bool]string{true: "on", false: "off"}[on]))
	return nil
}

func (f *fakePower) Locate(context.Context, v1alpha1.SwitchPort, net.HardwareAddr) (int, error) {
	return f.port, nil
}

func (f *fakePower) history() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, " ")
}

type piHarness struct {
	t     *testing.T
	dir   string
	store *resources.Store
	r     *Reconciler
	power *fakePower
}

func newPiHarness(t *testing.T) *piHarness {
	t.Helper()
	dir := t.TempDir()
	s, err := resources.NewStore(resources.Options{Dir: dir, StateDir: t.TempDir(), Status: resources.StatusNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	_, subnet, _ := net.ParseCIDR("10.77.0.0/24")
	p := &fakePower{port: 10}
	r, err := NewReconciler(Options{Store: s, StateDir: t.TempDir(), Log: logr.Discard(), Power: p,
		Netboot: &NetbootSettings{ServerIP: net.ParseIP("10.77.0.1"), Subnet: subnet,
			PowerOffTime: time.Millisecond, BootTimeout: 50 * time.Millisecond, InstallTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &piHarness{t: t, dir: dir, store: s, r: r, power: p}
}

func (h *piHarness) write(name, mac, ip string, gen int, extra string) {
	h.t.Helper()
	path := filepath.Join(h.dir, name+".yaml")
	content := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: PiNode\nmetadata: {name: %s}\nspec:\n  mac: %q\n  ip: %s\n  switch: {address: \"10.77.0.129:161\", port: 10, community: private}\n  image: {url: \"file:///srv/os.img\"}\n  installGeneration: %d\n%s", name, mac, ip, gen, extra)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.store.Reload(path)
}

// reconcile runs reconciles of name until it asks for no quick requeue,
// sleeping out short RequeueAfters, and returns the status.
func (h *piHarness) reconcile(name string) v1alpha1.PiNodeStatus {
	h.t.Helper()
	for range 20 {
		res, err := h.r.Reconcile(context.Background(), reconcile.Request{Name: name})
		if err != nil {
			h.t.Fatalf("Reconcile: %v", err)
		}
		if res.RequeueAfter == 0 || res.RequeueAfter > 20*time.Millisecond {
			break
		}
		time.Sleep(res.RequeueAfter)
	}
	obj, _ := h.store.View(v1alpha1.KindPiNode, name)
	return obj.(*v1alpha1.PiNode).Status
}

// reconcileUntil reconciles name until it reaches phase (a timeout of the
// harness's short ones runs out), with a bounded wait.
func (h *piHarness) reconcileUntil(name, phase string) v1alpha1.PiNodeStatus {
	h.t.Helper()
	var st v1alpha1.PiNodeStatus
	waitfor.Within(h.t, 10*time.Second, name+" "+phase, func() bool {
		st = h.reconcile(name)
		return st.Phase == phase
	})
	return st
}

func TestPiNodeInstallCycle(t *testing.T) {
	h := newPiHarness(t)
	mac, _ := net.ParseMAC("dc:a6:32:01:02:03")
	h.write("pi-10", mac.String(), "10.77.0.10", 1, "")
	st := h.reconcile("pi-10")
	if st.Phase != v1alpha1.PiNodeBooting || h.power.history() != "10:off 10:on" {
		t.Fatalf("after the power cycle: phase %s, power %q", st.Phase, h.power.history())
	}
	if _, ip, ok := h.r.Lookup(mac); !ok || ip.String() != "10.77.0.10" {
		t.Fatalf("Lookup = %v %v", ip, ok)
	}
	p := h.r.Plan(mac, "http://10.77.0.1:8070/img")
	if p.Action != handshake.ActionInstall || p.Image.URL != "http://10.77.0.1:8070/img" {
		t.Fatalf("plan while booting: %+v", p)
	}
	h.r.Report(mac, handshake.Progress{Phase: handshake.PhaseInstalling, Percent: 50, Message: "copying"})
	if st := h.reconcile("pi-10"); st.Phase != v1alpha1.PiNodeInstalling || !strings.Contains(st.Conditions[0].Message, "50%") {
		t.Fatalf("installing: %+v", st)
	}
	h.r.Report(mac, handshake.Progress{Phase: handshake.PhaseInstalled, Percent: 100})
	st = h.reconcile("pi-10")
	if st.Phase != v1alpha1.PiNodeInstalled || st.InstalledGeneration == nil || *st.InstalledGeneration != 1 {
		t.Fatalf("installed: %+v", st)
	}
	if p := h.r.Plan(mac, "x"); p.Action != handshake.ActionBootLocal {
		t.Fatalf("plan after the install: %+v", p)
	}
	// Nothing more happens on later reconciles.
	h.reconcile("pi-10")
	if h.power.history() != "10:off 10:on" {
		t.Fatalf("an installed node was power-cycled again: %q", h.power.history())
	}
	// Bumping the generation reinstalls.
	h.write("pi-10", mac.String(), "10.77.0.10", 2, "")
	if st := h.reconcile("pi-10"); st.Phase != v1alpha1.PiNodeBooting || h.power.history() != "10:off 10:on 10:off 10:on" {
		t.Fatalf("after the bump: %s %q", st.Phase, h.power.history())
	}
}

func TestPiNodeBootTimeoutAndReinstall(t *testing.T) {
	h := newPiHarness(t)
	h.write("pi-11", "dc:a6:32:01:02:04", "10.77.0.11", 1, "")
	h.reconcile("pi-11")
	st := h.reconcileUntil("pi-11", v1alpha1.PiNodeFailed) // the 50 ms boot timeout
	if st.Conditions[0].Reason != ReasonBootTimeout {
		t.Fatalf("after the boot timeout: %+v", st)
	}
	h.reconcile("pi-11")
	if h.power.history() != "10:off 10:on" {
		t.Fatalf("a failed install was retried by itself: %q", h.power.history())
	}
	if err := h.r.RequestReinstall("pi-11"); err != nil {
		t.Fatal(err)
	}
	if st := h.reconcile("pi-11"); st.Phase != v1alpha1.PiNodeBooting || h.power.history() != "10:off 10:on 10:off 10:on" {
		t.Fatalf("after reinstall: %s %q", st.Phase, h.power.history())
	}
}

func TestPiNodeBadInput(t *testing.T) {
	h := newPiHarness(t)
	h.write("a", "dc:a6:32:01:02:05", "10.77.0.12", 0, "")
	h.write("b", "dc:a6:32:01:02:05", "10.77.0.13", 0, "")
	h.write("c", "dc:a6:32:01:02:06", "10.88.0.14", 0, "")
	if st := h.reconcile("a"); st.Phase != v1alpha1.PiNodeInstalled || *st.InstalledGeneration != 0 {
		t.Fatalf("a (declared installed): %+v", st)
	}
	if st := h.reconcile("b"); st.Phase != v1alpha1.PiNodeFailed || st.Conditions[0].Reason != ReasonDuplicateMAC {
		t.Fatalf("b: %+v", st)
	}
	if st := h.reconcile("c"); st.Phase != v1alpha1.PiNodeFailed || st.Conditions[0].Reason != ReasonInvalidNetwork {
		t.Fatalf("c: %+v", st)
	}
	mac, _ := net.ParseMAC("dc:a6:32:01:02:05")
	if name, _, _ := h.r.Lookup(mac); name != "a" {
		t.Fatalf("the duplicate MAC answers for %q, want a", name)
	}
	h.power.fail = fmt.Errorf("switch 10.77.0.129:161 does not answer")
	h.power.port = 7 // the switch sees d on port 7, the spec says 10
	h.write("d", "dc:a6:32:01:02:07", "10.77.0.15", 1, "")
	if _, err := h.r.Reconcile(context.Background(), reconcile.Request{Name: "d"}); err == nil {
		t.Fatal("a switch error was not returned for a retry")
	}
	obj, _ := h.store.View(v1alpha1.KindPiNode, "d")
	if c := obj.(*v1alpha1.PiNode).Status.Conditions[0]; c.Reason != ReasonSwitchError || !strings.Contains(c.Message, "does not answer") {
		t.Fatalf("d: %+v", c)
	}
	h.power.fail = nil
	st := h.reconcile("d")
	if st.ObservedSwitchPort != 7 || st.Condition("SwitchPort").Reason != ReasonPortMismatch {
		t.Fatalf("observedSwitchPort %d (%+v), want 7 and a mismatch", st.ObservedSwitchPort, st.Conditions)
	}
}

// The node that lost a MAC clash takes over when the winner changes its MAC.
func TestPiNodeDuplicateResolves(t *testing.T) {
	h := newPiHarness(t)
	h.write("a", "dc:a6:32:01:02:05", "10.77.0.12", 0, "")
	h.write("b", "dc:a6:32:01:02:05", "10.77.0.13", 0, "")
	h.reconcile("a")
	if st := h.reconcile("b"); st.Conditions[0].Reason != ReasonDuplicateMAC {
		t.Fatalf("b: %+v", st)
	}
	h.write("a", "dc:a6:32:01:02:99", "10.77.0.12", 0, "")
	h.reconcile("a")
	if st := h.reconcile("b"); st.Phase != v1alpha1.PiNodeInstalled {
		t.Fatalf("b after a moved off its MAC: %+v", st)
	}
	mac, _ := net.ParseMAC("dc:a6:32:01:02:05")
	if name, _, _ := h.r.Lookup(mac); name != "b" {
		t.Fatalf("the MAC answers for %q, want b", name)
	}
}

// A daemon restart in the middle of an install continues it: the timeouts
// run from the restart, and the Pi's report still lands.
func TestPiNodeRestartMidInstall(t *testing.T) {
	h := newPiHarness(t)
	mac, _ := net.ParseMAC("dc:a6:32:01:02:08")
	h.write("pi", mac.String(), "10.77.0.16", 1, "")
	h.reconcile("pi")
	h.r.Plan(mac, "x")
	h.reconcile("pi") // Installing
	// The daemon went down two hours ago, longer than the install timeout
	// (an hour): the saved record says Installing since then.
	rec, ok := h.r.records.Get("pi")
	if !ok || rec.Phase != v1alpha1.PiNodeInstalling {
		t.Fatalf("record %+v, %v; want Installing", rec, ok)
	}
	rec.PhaseSince = time.Now().Add(-2 * time.Hour)
	h.r.records.Put("pi", rec)
	h.r.Close()
	// A new reconciler on the same records: the timeouts run from the
	// restart, so the install goes on.
	r2, err := NewReconciler(Options{Store: h.store, StateDir: h.r.opts.StateDir, Log: logr.Discard(), Power: h.power, Netboot: h.r.opts.Netboot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r2.Close)
	h.r = r2
	if st := h.reconcile("pi"); st.Phase != v1alpha1.PiNodeInstalling {
		t.Fatalf("after the restart: %+v", st)
	}
	h.r.Report(mac, handshake.Progress{Phase: handshake.PhaseInstalled, Percent: 100})
	if st := h.reconcile("pi"); st.Phase != v1alpha1.PiNodeInstalled || *st.InstalledGeneration != 1 {
		t.Fatalf("after the report: %+v", st)
	}
}

// power: Off then On after a failed install powers the port and shows the
// failure, without installing again by itself.
func TestPiNodeOffOnAfterFailure(t *testing.T) {
	h := newPiHarness(t)
	h.write("pi", "dc:a6:32:01:02:09", "10.77.0.17", 1, "")
	h.reconcile("pi")
	h.reconcileUntil("pi", v1alpha1.PiNodeFailed) // the 50 ms boot timeout
	h.write("pi", "dc:a6:32:01:02:09", "10.77.0.17", 1, "  power: \"Off\"\n")
	if st := h.reconcile("pi"); st.Phase != v1alpha1.PiNodeOff {
		t.Fatalf("%+v", st)
	}
	if err := h.r.RequestReinstall("pi"); err == nil {
		t.Fatal("a reinstall was accepted while power is Off")
	}
	h.write("pi", "dc:a6:32:01:02:09", "10.77.0.17", 1, "")
	if st := h.reconcile("pi"); st.Phase != v1alpha1.PiNodeFailed || h.power.history() != "10:off 10:on 10:off 10:on" {
		t.Fatalf("after power On again: %s, power %q", st.Phase, h.power.history())
	}
}

// A switch that never answers fails the install after the boot timeout,
// instead of retrying in silence.
func TestPiNodeSwitchNeverAnswers(t *testing.T) {
	h := newPiHarness(t)
	h.power.fail = fmt.Errorf("switch 10.77.0.129:161 does not answer")
	h.write("pi", "dc:a6:32:01:02:0a", "10.77.0.18", 1, "")
	if _, err := h.r.Reconcile(context.Background(), reconcile.Request{Name: "pi"}); err == nil {
		t.Fatal("the first switch error was not returned for a retry")
	}
	var st v1alpha1.PiNodeStatus
	waitfor.Within(t, 10*time.Second, "Failed after the 50 ms boot timeout", func() bool {
		h.r.Reconcile(context.Background(), reconcile.Request{Name: "pi"}) // the switch error is expected
		obj, _ := h.store.View(v1alpha1.KindPiNode, "pi")
		st = obj.(*v1alpha1.PiNode).Status
		return st.Phase == v1alpha1.PiNodeFailed
	})
	if st.Conditions[0].Reason != ReasonSwitchError {
		t.Fatalf("after the timeout: %+v", st)
	}
}

// writeAnnotated writes an installed (generation 0) node with a
// restartedAt annotation.
func (h *piHarness) writeAnnotated(name, restartedAt string) {
	h.t.Helper()
	path := filepath.Join(h.dir, name+".yaml")
	content := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: PiNode\nmetadata:\n  name: %s\n  annotations: {reconciled.dev/restartedAt: %q}\nspec:\n  mac: \"dc:a6:32:01:02:20\"\n  ip: 10.77.0.20\n  switch: {address: \"10.77.0.129:161\", port: 10, community: private}\n  installGeneration: 0\n", name, restartedAt)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.store.Reload(path)
}

// restart pinode/NAME and a change of restartedAt power-cycle the port
// (off, on) without an install; the first value seen is no request.
func TestPiNodePowerCycle(t *testing.T) {
	h := newPiHarness(t)
	h.writeAnnotated("pi", "2026-01-01T00:00:00Z")
	st := h.reconcile("pi")
	if st.Phase != v1alpha1.PiNodeInstalled || h.power.history() != "10:on" || st.LastPowerCycle != nil {
		t.Fatalf("a new node with an annotation: %s %q %+v", st.Phase, h.power.history(), st.LastPowerCycle)
	}
	if err := h.r.RequestPowerCycle("pi"); err != nil {
		t.Fatal(err)
	}
	st = h.reconcile("pi")
	lc := st.LastPowerCycle
	if h.power.history() != "10:on 10:off 10:on" || lc == nil || lc.Result != v1alpha1.PowerCycleSucceeded || lc.Trigger != TriggerAPI ||
		lc.Port != 10 || lc.FinishedAt == nil || !strings.Contains(lc.Message, "port 10 off for") {
		t.Fatalf("after restart: power %q, lastPowerCycle %+v", h.power.history(), lc)
	}
	if st.Phase != v1alpha1.PiNodeInstalled || st.InstalledGeneration == nil || *st.InstalledGeneration != 0 || st.Conditions[0].Status != "True" {
		t.Fatalf("after restart: %+v", st)
	}
	// The annotation.
	h.writeAnnotated("pi", "2026-01-02T00:00:00Z")
	st = h.reconcile("pi")
	if h.power.history() != "10:on 10:off 10:on 10:off 10:on" || st.LastPowerCycle.Trigger != "annotation reconciled.dev/restartedAt=2026-01-02T00:00:00Z" {
		t.Fatalf("after the annotation: %q %+v", h.power.history(), st.LastPowerCycle)
	}
	h.reconcile("pi")
	if n := strings.Count(h.power.history(), "off"); n != 2 {
		t.Fatalf("the same annotation cycled again: %q", h.power.history())
	}
	// Kept off: refused, with a conflict.
	if err := os.WriteFile(filepath.Join(h.dir, "pi.yaml"), []byte(strings.Replace(mustRead(t, filepath.Join(h.dir, "pi.yaml")), "installGeneration: 0", "installGeneration: 0\n  power: \"Off\"", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.store.Reload(filepath.Join(h.dir, "pi.yaml"))
	h.reconcile("pi")
	if err := h.r.RequestPowerCycle("pi"); !errors.Is(err, resources.ErrConflict) {
		t.Fatalf("power cycle of a node kept off: %v", err)
	}
	if err := h.r.RequestPowerCycle("nosuch"); !errors.Is(err, resources.ErrNotFound) {
		t.Fatalf("power cycle of an unknown node: %v", err)
	}
}

// A switch that does not switch the port on again: SwitchError in Ready,
// the cycle Failed after bootTimeout but still retried, and a daemon
// restarted meanwhile switches it on.
func TestPiNodePowerCycleSwitchFails(t *testing.T) {
	h := newPiHarness(t)
	h.writeAnnotated("pi", "")
	h.reconcile("pi")
	h.power.mu.Lock()
	h.power.failOn = fmt.Errorf("switch 10.77.0.129:161: no answer")
	h.power.mu.Unlock()
	h.r.RequestPowerCycle("pi")
	var st v1alpha1.PiNodeStatus
	waitfor.Within(t, 10*time.Second, "the cycle reported Failed", func() bool {
		h.r.Reconcile(context.Background(), reconcile.Request{Name: "pi"}) // the switch error is expected
		obj, _ := h.store.View(v1alpha1.KindPiNode, "pi")
		st = obj.(*v1alpha1.PiNode).Status
		return st.LastPowerCycle != nil && st.LastPowerCycle.Result == v1alpha1.PowerCycleFailed
	})
	if c := st.Conditions[0]; c.Reason != ReasonSwitchError || !strings.Contains(c.Message, "power on: switch 10.77.0.129:161: no answer") {
		t.Fatalf("Ready while the switch fails: %+v", c)
	}
	if !strings.Contains(st.LastPowerCycle.Message, "still retrying") {
		t.Fatalf("lastPowerCycle %+v", st.LastPowerCycle)
	}
	// The daemon restarts; the switch is back.
	h.r.Close()
	h.power.mu.Lock()
	h.power.failOn = nil
	h.power.mu.Unlock()
	r2, err := NewReconciler(Options{Store: h.store, StateDir: h.r.opts.StateDir, Log: logr.Discard(), Power: h.power, Netboot: h.r.opts.Netboot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r2.Close)
	h.r = r2
	st = h.reconcile("pi")
	if st.LastPowerCycle.Result != v1alpha1.PowerCycleSucceeded || !strings.HasSuffix(h.power.history(), "10:off 10:on") || st.Conditions[0].Status != "True" {
		t.Fatalf("after the restart: power %q, %+v", h.power.history(), st)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
