// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package pinode is the PiNode controller: it powers Raspberry Pis over
// SNMP (internal/poe), drives their installs through the netboot servers
// (netboot/...), and power-cycles them on request.
package pinode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/kvlog"
	"github.com/reconciled/reconciled/netboot"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
)

// Reasons used in PiNode conditions and events.
const (
	ReasonNetbootDisabled = "NetbootDisabled"
	ReasonInvalidNetwork  = "InvalidNetwork"
	ReasonDuplicateMAC    = "DuplicateMAC"
	ReasonDuplicateIP     = "DuplicateIP"
	ReasonSwitchError     = "SwitchError"
	ReasonPoweringOff     = "PoweringOff"
	ReasonBooting         = "Booting"
	ReasonInstalling      = "Installing"
	ReasonInstalled       = "Installed"
	ReasonInstallFailed   = "InstallFailed"
	ReasonBootTimeout     = "BootTimeout"
	ReasonInstallTimeout  = "InstallTimeout"
	ReasonPoweredOff      = "PoweredOff"
	ReasonPortMismatch    = "PortMismatch"
	ReasonReinstall       = "ReinstallRequested"
)

// Power switches a PoE port and finds which port a MAC is on (SNMP).
type Power interface {
	SetPower(ctx context.Context, sw v1alpha1.SwitchPort, on bool) error
	// Locate returns the switch port the MAC was last seen on, or 0.
	Locate(ctx context.Context, sw v1alpha1.SwitchPort, mac net.HardwareAddr) (int, error)
}

// NetbootSettings are the parts of the daemon's netboot: config the
// controller needs.
type NetbootSettings struct {
	ServerIP net.IP
	Subnet   *net.IPNet
	// PowerOffTime is how long a port stays off in a power cycle.
	PowerOffTime time.Duration
	// BootTimeout bounds Booting since the last DHCP/TFTP/handshake
	// contact; InstallTimeout bounds Installing since the last progress
	// report. All three are required (positive).
	BootTimeout, InstallTimeout time.Duration
}

// Options configures a Reconciler.
type Options struct {
	Store    controllers.ResourceStore
	StateDir string
	Log      logr.Logger
	Events   events.Recorder
	// Registerer receives reconciled_pinode_phase; nil registers nothing.
	Registerer prometheus.Registerer
	Power      Power
	// Netboot is nil when the daemon has no netboot: settings; PiNodes
	// then wait (NetbootDisabled).
	Netboot *NetbootSettings
	// Index is where the controller claims each node's MAC and IP for the
	// netboot servers (nil: one of its own).
	Index *netboot.Index
}

// piRecord is what the controller keeps on disk per PiNode, so an install
// in progress survives a daemon restart and a failed one is not retried
// by itself.
type piRecord struct {
	Phase      string    `json:"phase"`
	PhaseSince time.Time `json:"phaseSince"`
	// InstallHash identifies the install asked for (generation + image);
	// InstalledHash the last one that finished, FailedHash the last that
	// failed (not retried until the spec changes or a reinstall is asked).
	InstallHash   string `json:"installHash,omitempty"`
	InstalledHash string `json:"installedHash,omitempty"`
	FailedHash    string `json:"failedHash,omitempty"`
	Reason        string `json:"reason,omitempty"`
	Message       string `json:"message,omitempty"`
	// RestartedAt is the reconciled.dev/restartedAt annotation value
	// already acted on (RestartedAtSeen: since the node was first seen).
	RestartedAt     string `json:"restartedAt,omitempty"`
	RestartedAtSeen bool   `json:"restartedAtSeen,omitempty"`
	// Cycle is a power cycle under way; LastCycle the last one, for
	// status.lastPowerCycle.
	Cycle     *cycleRecord         `json:"cycle,omitempty"`
	LastCycle *v1alpha1.PowerCycle `json:"lastCycle,omitempty"`
	// LastProgress is the installer's last word (its plan request or a
	// report); not kept on disk: after a restart the timeouts run from
	// the restart.
	LastProgress time.Time `json:"-"`
}

// piState is the in-memory side of one PiNode. mu guards what Reconcile
// owns, and is held across SNMP calls; the netboot servers and the API
// only touch what seenMu guards (what they saw and asked for), so they
// never wait for a switch.
type piState struct {
	mu           sync.Mutex
	rec          piRecord
	metricPhase  string // the phase reconciled_pinode_phase shows for the node
	lastLocate   time.Time
	observedPort int

	lastContact atomic.Int64 // Unix nanoseconds of the last DHCP, TFTP or handshake contact; no lock, so the DHCP server never waits

	seenMu sync.Mutex
	// planAt and reports are what the installer said since the last
	// reconcile.
	planAt  time.Time
	reports []report
	// reinstall and cycleRequest are requests through the API not acted
	// on yet.
	reinstall    bool
	cycleRequest string
	// published is what Plan answers from: the phase and install of the
	// record as Reconcile last kept it.
	published piRecord
}

// Reconciler drives PiNodes through power cycles and installs, and
// answers the netboot servers' questions about them.
type Reconciler struct {
	opts    Options
	log     logr.Logger
	store   controllers.ResourceStore
	records *kvlog.Map[piRecord]
	ctrl    *reconcile.Controller
	phase   *prometheus.GaugeVec

	index *netboot.Index

	mu      sync.Mutex // guards the maps only
	nodes   map[string]*piState
	unknown map[string]*UnknownNode
}

// UnknownNode is a MAC that asked the DHCP server for an address without
// being declared in a PiNode: a new Pi waiting to be declared.
type UnknownNode struct {
	MAC         string    `json:"mac"`
	VendorClass string    `json:"vendorClass,omitempty"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
	Count       int       `json:"count"`
}

// maxUnknown bounds the unknown MACs remembered.
const maxUnknown = 256

// NewReconciler opens the install records.
func NewReconciler(o Options) (*Reconciler, error) {
	if o.Events == nil {
		o.Events = controllers.DiscardRecorder{}
	}
	if nb := o.Netboot; nb != nil && (nb.PowerOffTime <= 0 || nb.BootTimeout <= 0 || nb.InstallTimeout <= 0) {
		// The daemon's settings (apis/config/v1alpha1) default them.
		return nil, fmt.Errorf("netboot settings: powerOffTime, bootTimeout and installTimeout must be positive")
	}
	records, err := controllers.OpenRecords[piRecord](filepath.Join(o.StateDir, "pinodes.json"), o.Log.WithName("pinode-records"), o.Events)
	if err != nil {
		return nil, fmt.Errorf("pinode records: %w", err)
	}
	if o.Index == nil {
		o.Index = netboot.NewIndex()
	}
	r := &Reconciler{opts: o, log: o.Log, store: o.Store, records: records, index: o.Index,
		nodes: map[string]*piState{}, unknown: map[string]*UnknownNode{},
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconciled_pinode_phase", Help: "1 for the PiNode's current phase.",
		}, []string{"name", "phase"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(r.phase)
	}
	return r, nil
}

// SetupWithEngine registers the controller.
func (r *Reconciler) SetupWithEngine(e *reconcile.Engine) error {
	c, err := controllers.WatchKind(e, r.store, v1alpha1.KindPiNode, r, reconcile.ControllerOptions{MaxConcurrentReconciles: 4})
	r.ctrl = c
	return err
}

func (r *Reconciler) enqueue(name string) {
	if r.ctrl != nil {
		r.ctrl.Enqueue(name)
	}
}

// state returns the node's state, creating it from its record.
func (r *Reconciler) state(name string) *piState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.nodes[name]
	if st == nil {
		st = &piState{}
		if rec, ok := r.records.Get(name); ok {
			if rec.Phase == v1alpha1.PiNodeBooting || rec.Phase == v1alpha1.PiNodeInstalling {
				// Picked up after a daemon restart: the timeouts run from
				// now, not from a contact we cannot know about.
				now := time.Now()
				st.lastContact.Store(now.UnixNano())
				rec.LastProgress = now
			}
			st.rec, st.published = rec, rec
		}
		r.nodes[name] = st
	}
	return st
}

// RequestReinstall reinstalls a PiNode now, as if its spec had been bumped.
func (r *Reconciler) RequestReinstall(name string) error {
	obj, ok := r.store.Get(v1alpha1.KindPiNode, name)
	if !ok {
		return fmt.Errorf("pinode %q: %w", name, resources.ErrNotFound)
	}
	if obj.(*v1alpha1.PiNode).Spec.Power == "Off" {
		return fmt.Errorf("pinode %q has power: Off; set it On to reinstall", name)
	}
	st := r.state(name)
	st.seenMu.Lock()
	st.reinstall = true
	st.seenMu.Unlock()
	r.enqueue(name)
	return nil
}

// installHash identifies an install: the generation and the image.
func installHash(n *v1alpha1.PiNode) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", *n.Spec.InstallGeneration)
	if img := n.Spec.Image; img != nil {
		fmt.Fprintf(h, "%s\n%s\n", img.URL, img.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Reconcile implements reconcile.Reconciler. It is the only writer of a
// node's phase: it gathers what the spec asks and what the netboot servers
// saw, lets the state machine (next) decide, does the switch operation it
// asks for, and keeps the record.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx)
	obj, exists := r.store.Get(v1alpha1.KindPiNode, req.Name)
	if !exists {
		if r.store.Known(v1alpha1.KindPiNode, req.Name) {
			return reconcile.Result{}, nil // only in an invalid file: keep everything
		}
		r.forget(req.Name)
		return reconcile.Result{}, nil
	}
	n := obj.(*v1alpha1.PiNode)
	st := r.state(req.Name)
	st.mu.Lock()
	defer st.mu.Unlock()
	status := v1alpha1.PiNodeStatus{CommonStatus: controllers.StatusFor(n), InstalledGeneration: n.Status.InstalledGeneration, LastSeen: n.Status.LastSeen,
		ObservedSwitchPort: n.Status.ObservedSwitchPort, LastPowerCycle: n.Status.LastPowerCycle}

	var wait time.Duration
	var err error
	phase, reason, msg := r.precheck(n)
	if phase == "" {
		r.locateLocked(ctx, log, n, st)
		wait, err = r.step(ctx, log, n, st, &status)
		phase, reason, msg = st.rec.Phase, st.rec.Reason, st.rec.Message
	}
	if lc := st.lastContact.Load(); lc != 0 && (status.LastSeen == nil || time.Unix(0, lc).Sub(status.LastSeen.Time) >= lastSeenStep || phase != n.Status.Phase) {
		t := metav1.NewTime(time.Unix(0, lc).Truncate(time.Second))
		status.LastSeen = &t
	}
	status.Phase = phase
	if status.Phase == "" {
		status.Phase = v1alpha1.PiNodePending
	}
	ready := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: n.Generation}
	if status.Phase == v1alpha1.PiNodeInstalled || (status.Phase == v1alpha1.PiNodeOff && n.Spec.Power == "Off") {
		ready.Status = metav1.ConditionTrue
	}
	if ready.Reason == "" {
		ready.Reason = status.Phase
	}
	if st.rec.LastCycle != nil {
		lc := *st.rec.LastCycle
		status.LastPowerCycle = &lc
	}
	if c := st.rec.Cycle; c != nil && r.opts.Netboot != nil {
		ready.Status = metav1.ConditionFalse
		ready.Reason, ready.Message = cycleCondition(c, r.opts.Netboot.PowerOffTime)
	}
	status.SetCondition(ready)
	if st.observedPort > 0 {
		status.ObservedSwitchPort = st.observedPort
		c := v1alpha1.Condition{Type: "SwitchPort", Status: metav1.ConditionTrue, Reason: "Matches", ObservedGeneration: n.Generation,
			Message: fmt.Sprintf("seen on port %d", st.observedPort)}
		if st.observedPort != n.Spec.Switch.Port {
			c.Status, c.Reason = metav1.ConditionFalse, ReasonPortMismatch
			c.Message = fmt.Sprintf("the switch sees %s on port %d, the spec says %d", n.Spec.MAC, st.observedPort, n.Spec.Switch.Port)
		}
		status.SetCondition(c)
	}
	if err := r.store.UpdateStatus(v1alpha1.KindPiNode, n.Name, status); err != nil {
		log.V(1).Info("status not updated", "error", err.Error())
	}
	if st.metricPhase != status.Phase {
		r.phase.DeletePartialMatch(prometheus.Labels{"name": n.Name})
		r.phase.WithLabelValues(n.Name, status.Phase).Set(1)
		st.metricPhase = status.Phase
	}
	return reconcile.Result{RequeueAfter: wait}, err
}

// precheck returns the phase, reason and message of a node that cannot
// take part in netboot as declared (no netboot settings, an address
// outside the subnet, a MAC or IP another node holds), or "". It claims
// the node's addresses in the index otherwise. The node's record is left
// as it is: fixing the spec picks the install up where it was.
func (r *Reconciler) precheck(n *v1alpha1.PiNode) (phase, reason, msg string) {
	nb := r.opts.Netboot
	if nb == nil {
		return v1alpha1.PiNodePending, ReasonNetbootDisabled, "the daemon has no netboot: settings (--config)"
	}
	mac, _ := net.ParseMAC(n.Spec.MAC)
	ip := net.ParseIP(n.Spec.IP).To4()
	if !nb.Subnet.Contains(ip) || ip.Equal(nb.ServerIP) || ip.Equal(nb.Subnet.IP) || isBroadcast(ip, nb.Subnet) {
		r.enqueueAll(r.index.Release(n.Name))
		return v1alpha1.PiNodeFailed, ReasonInvalidNetwork,
			fmt.Sprintf("ip %s is not a host address of the netboot subnet %s other than the server's %s", ip, nb.Subnet, nb.ServerIP)
	}
	clash, recheck := r.index.Claim(n.Name, mac, ip)
	r.enqueueAll(recheck)
	if clash != nil {
		reason := ReasonDuplicateMAC
		if clash.Address == "IP" {
			reason = ReasonDuplicateIP
		}
		return v1alpha1.PiNodeFailed, reason, fmt.Sprintf("PiNode %q declares the same %s; the first by name keeps it", clash.Holder, clash.Address)
	}
	r.mu.Lock()
	delete(r.unknown, mac.String()) // declared now
	r.mu.Unlock()
	return "", "", ""
}

// step runs one step of the state machine for n and keeps its outcome.
// Called with st.mu held.
func (r *Reconciler) step(ctx context.Context, log logr.Logger, n *v1alpha1.PiNode, st *piState, status *v1alpha1.PiNodeStatus) (time.Duration, error) {
	nb := r.opts.Netboot
	st.seenMu.Lock()
	in := input{
		want: installHash(n), gen: *n.Spec.InstallGeneration, hasImage: n.Spec.Image != nil, powerOff: n.Spec.Power == "Off",
		port: n.Spec.Switch.Port, restartedAt: n.Annotations[v1alpha1.AnnotationRestartedAt], installedGen: status.InstalledGeneration,
		powerOffTime: nb.PowerOffTime, bootTimeout: nb.BootTimeout, installTimeout: nb.InstallTimeout,
		reinstall: st.reinstall, cycleRequest: st.cycleRequest, planAt: st.planAt, reports: st.reports,
	}
	st.planAt, st.reports = time.Time{}, nil
	st.seenMu.Unlock()
	if lc := st.lastContact.Load(); lc != 0 {
		in.lastContact = time.Unix(0, lc)
	}
	now := time.Now()
	out := next(st.rec, in, now)
	if op := out.power; op != nil {
		if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, op.on); err != nil {
			in.failed = err
			out = next(st.rec, in, now)
		}
	}
	if out.note != "" {
		log.Info(out.note)
	}
	for _, ev := range out.events {
		r.opts.Events.Eventf(v1alpha1.KindPiNode, n.Name, ev.typ, ev.reason, "%s", ev.msg)
	}
	st.seenMu.Lock()
	if out.tookReinstall {
		st.reinstall = false
	}
	if out.tookCycle {
		st.cycleRequest = ""
	}
	st.published = out.rec
	st.seenMu.Unlock()
	if out.rec != st.rec {
		r.records.Put(n.Name, out.rec)
	}
	st.rec = out.rec
	if out.installedGen != nil {
		status.InstalledGeneration = out.installedGen
	}
	return out.requeue, out.err
}

// locateLocked refreshes the switch port the node's MAC is seen on, at
// most every 5 minutes.
func (r *Reconciler) locateLocked(ctx context.Context, log logr.Logger, n *v1alpha1.PiNode, st *piState) {
	if time.Since(st.lastLocate) < 5*time.Minute {
		return
	}
	st.lastLocate = time.Now()
	mac, _ := net.ParseMAC(n.Spec.MAC)
	port, err := r.opts.Power.Locate(ctx, n.Spec.Switch, mac)
	if err != nil {
		log.V(1).Info("cannot read the switch's forwarding table", "error", err.Error())
		return
	}
	if port > 0 && port != st.observedPort {
		st.observedPort = port
		if port != n.Spec.Switch.Port {
			r.opts.Events.Eventf(v1alpha1.KindPiNode, n.Name, events.TypeWarning, ReasonPortMismatch,
				"the switch sees %s on port %d, the spec says port %d", n.Spec.MAC, port, n.Spec.Switch.Port)
		}
	}
}

// forget drops a deleted PiNode; its port is left as it is.
func (r *Reconciler) forget(name string) {
	r.enqueueAll(r.index.Release(name)) // a node that clashed with this one may take the addresses now
	r.mu.Lock()
	delete(r.nodes, name)
	r.mu.Unlock()
	r.records.Delete(name)
	r.phase.DeletePartialMatch(prometheus.Labels{"name": name})
}

// enqueueAll looks again at names.
func (r *Reconciler) enqueueAll(names []string) {
	for _, n := range names {
		r.enqueue(n)
	}
}

func isBroadcast(ip net.IP, n *net.IPNet) bool {
	b := make(net.IP, 4)
	base := n.IP.To4()
	for i := range 4 {
		b[i] = base[i] | ^n.Mask[i]
	}
	return ip.Equal(b)
}

// Close flushes the install records.
func (r *Reconciler) Close() { r.records.Close() }
