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
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	"github.com/reconciled/reconciled/netboot/handshake"
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
	// PowerOffTime is how long a port stays off in a power cycle (default 5 s).
	PowerOffTime time.Duration
	// BootTimeout bounds Booting since the last DHCP/TFTP/handshake
	// contact (default 5 min); InstallTimeout bounds Installing since the
	// last progress report (default 30 min).
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
}

// piState is the in-memory side of one PiNode, guarded by its mu (held
// across SNMP calls, so r.mu, which the DHCP path takes, never is).
type piState struct {
	mu           sync.Mutex
	rec          piRecord
	metricPhase  string       // the phase reconciled_pinode_phase shows for the node
	lastContact  atomic.Int64 // Unix nanoseconds of the last DHCP, TFTP or handshake contact; no lock, so the DHCP server never waits
	lastProgress time.Time
	lastLocate   time.Time
	observedPort int
	reinstall    bool
	// cycleRequest is the trigger of a power cycle asked through the API
	// and not started yet.
	cycleRequest string
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

	mu      sync.Mutex // guards the maps only
	nodes   map[string]*piState
	byMAC   map[string]string // mac -> name, for the node that owns it
	byIP    map[string]string
	unknown map[string]*UnknownNode
	losers  map[string]bool // nodes that lost a MAC or IP clash
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
	if nb := o.Netboot; nb != nil {
		if nb.PowerOffTime <= 0 {
			nb.PowerOffTime = 5 * time.Second
		}
		if nb.BootTimeout <= 0 {
			nb.BootTimeout = 5 * time.Minute
		}
		if nb.InstallTimeout <= 0 {
			nb.InstallTimeout = 30 * time.Minute
		}
	}
	records, err := controllers.OpenRecords[piRecord](filepath.Join(o.StateDir, "pinodes.json"), o.Log.WithName("pinode-records"), o.Events)
	if err != nil {
		return nil, fmt.Errorf("pinode records: %w", err)
	}
	r := &Reconciler{opts: o, log: o.Log, store: o.Store, records: records,
		nodes: map[string]*piState{}, byMAC: map[string]string{}, byIP: map[string]string{}, unknown: map[string]*UnknownNode{}, losers: map[string]bool{},
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
			st.rec = rec
			if rec.Phase == v1alpha1.PiNodeBooting || rec.Phase == v1alpha1.PiNodeInstalling {
				// Picked up after a daemon restart: the timeouts run from
				// now, not from a contact we cannot know about.
				now := time.Now()
				st.lastContact.Store(now.UnixNano())
				st.lastProgress = now
			}
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
	st.mu.Lock()
	st.reinstall = true
	st.mu.Unlock()
	r.enqueue(name)
	return nil
}

// lastSeenStep is how far the last contact must have moved for
// status.lastSeen to be written again: traffic does not rewrite the file.
const lastSeenStep = 30 * time.Second

// Contact records DHCP or TFTP traffic from a node (by MAC or by IP; nil
// for the one not known). It is called for every packet, so it only
// reconciles the node when the contact is news: status.lastSeen moves in
// steps of lastSeenStep, and a Booting node's deadline reads the last
// contact itself when it comes due.
func (r *Reconciler) Contact(mac net.HardwareAddr, ip net.IP) {
	r.mu.Lock()
	name, ok := "", false
	if mac != nil {
		name, ok = r.byMAC[mac.String()]
	} else if ip != nil {
		name, ok = r.byIP[ip.String()]
	}
	r.mu.Unlock()
	if !ok {
		return
	}
	now := time.Now().UnixNano()
	if prev := r.state(name).lastContact.Swap(now); now-prev >= int64(lastSeenStep) {
		r.enqueue(name)
	}
}

// NoteUnknown records a DHCP request from an undeclared MAC (the DHCP
// server's OnUnknown); the first one of a MAC is also an event.
func (r *Reconciler) NoteUnknown(mac net.HardwareAddr, vendorClass string) {
	now := time.Now()
	key := mac.String()
	r.mu.Lock()
	u := r.unknown[key]
	first := u == nil
	if first {
		if len(r.unknown) >= maxUnknown {
			var oldest *UnknownNode
			for _, o := range r.unknown {
				if oldest == nil || o.LastSeen.Before(oldest.LastSeen) {
					oldest = o
				}
			}
			delete(r.unknown, oldest.MAC)
		}
		u = &UnknownNode{MAC: key, FirstSeen: now}
		r.unknown[key] = u
	}
	u.LastSeen, u.VendorClass = now, strconv.Quote(vendorClass)
	u.Count++
	r.mu.Unlock()
	if first {
		r.opts.Events.Eventf(v1alpha1.KindPiNode, "unknown-"+strings.ReplaceAll(key, ":", ""), events.TypeWarning, "UnknownMAC",
			"DHCP request from %s (vendor class %s), which no PiNode declares", key, strconv.Quote(vendorClass))
	}
}

// UnknownNodes implements apiserver.PiNodes.
func (r *Reconciler) UnknownNodes() any { return r.Unknown() }

// Unknown lists the undeclared MACs seen, most recent first.
func (r *Reconciler) Unknown() []UnknownNode {
	r.mu.Lock()
	out := make([]UnknownNode, 0, len(r.unknown))
	for _, u := range r.unknown {
		out = append(out, *u)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out
}

// Lookup returns the declared node of a MAC for the DHCP server.
func (r *Reconciler) Lookup(mac net.HardwareAddr) (name string, ip net.IP, ok bool) {
	r.mu.Lock()
	name, ok = r.byMAC[mac.String()]
	r.mu.Unlock()
	if !ok {
		return "", nil, false
	}
	obj, found := r.store.Get(v1alpha1.KindPiNode, name)
	if !found {
		return "", nil, false
	}
	return name, net.ParseIP(obj.(*v1alpha1.PiNode).Spec.IP).To4(), true
}

// Node implements handshake.Planner.
func (r *Reconciler) Node(mac net.HardwareAddr) (handshake.Node, bool) {
	name, ip, ok := r.Lookup(mac)
	if !ok {
		return handshake.Node{}, false
	}
	n := handshake.Node{Name: name, IP: ip}
	if obj, ok := r.store.Get(v1alpha1.KindPiNode, name); ok {
		if img := obj.(*v1alpha1.PiNode).Spec.Image; img != nil {
			if u, err := url.Parse(img.URL); err == nil && u.Scheme == "file" {
				n.ImageFile = u.Path
			}
		}
	}
	return n, true
}

// Plan implements handshake.Planner: install while an install is under
// way (the node moves to Installing), otherwise boot from the local disk.
func (r *Reconciler) Plan(mac net.HardwareAddr, imageURL string) handshake.Plan {
	name, _, ok := r.Lookup(mac)
	if !ok {
		return handshake.Plan{Action: handshake.ActionBootLocal}
	}
	obj, ok := r.store.Get(v1alpha1.KindPiNode, name)
	if !ok {
		return handshake.Plan{Action: handshake.ActionBootLocal}
	}
	n := obj.(*v1alpha1.PiNode)
	st := r.state(name)
	st.mu.Lock()
	st.lastContact.Store(time.Now().UnixNano())
	installing := (st.rec.Phase == v1alpha1.PiNodeBooting || st.rec.Phase == v1alpha1.PiNodeInstalling) && st.rec.InstallHash == installHash(n) && n.Spec.Image != nil
	if installing && st.rec.Phase == v1alpha1.PiNodeBooting {
		r.setPhaseLocked(name, st, v1alpha1.PiNodeInstalling, ReasonInstalling, "the installer asked for its plan")
		st.lastProgress = time.Now()
	}
	st.mu.Unlock()
	r.enqueue(name)
	if !installing {
		return handshake.Plan{Action: handshake.ActionBootLocal}
	}
	img := &handshake.Image{URL: n.Spec.Image.URL, SHA256: n.Spec.Image.SHA256}
	if u, err := url.Parse(img.URL); err == nil && u.Scheme == "file" {
		img.URL = imageURL
	}
	return handshake.Plan{Action: handshake.ActionInstall, Image: img}
}

// Report implements handshake.Planner.
func (r *Reconciler) Report(mac net.HardwareAddr, p handshake.Progress) {
	name, _, ok := r.Lookup(mac)
	if !ok {
		return
	}
	st := r.state(name)
	st.mu.Lock()
	now := time.Now()
	st.lastContact.Store(now.UnixNano())
	st.lastProgress = now
	// A report of the install we timed out on still counts: the Pi got
	// there after all (a daemon restart, a slow copy).
	lateSuccess := st.rec.Phase == v1alpha1.PiNodeFailed && p.Phase == handshake.PhaseInstalled &&
		st.rec.FailedHash == st.rec.InstallHash && (st.rec.Reason == ReasonBootTimeout || st.rec.Reason == ReasonInstallTimeout)
	if st.rec.Phase == v1alpha1.PiNodeBooting || st.rec.Phase == v1alpha1.PiNodeInstalling || lateSuccess {
		switch p.Phase {
		case handshake.PhaseInstalling:
			if st.rec.Phase != v1alpha1.PiNodeInstalling {
				r.setPhaseLocked(name, st, v1alpha1.PiNodeInstalling, ReasonInstalling, "")
			}
			st.rec.Reason, st.rec.Message = ReasonInstalling, fmt.Sprintf("%d%% %s", p.Percent, p.Message)
		case handshake.PhaseInstalled:
			st.rec.InstalledHash, st.rec.FailedHash = st.rec.InstallHash, ""
			r.setPhaseLocked(name, st, v1alpha1.PiNodeInstalled, ReasonInstalled, p.Message)
			r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeNormal, ReasonInstalled, "the installer reported success")
		case handshake.PhaseFailed:
			st.rec.FailedHash = st.rec.InstallHash
			r.setPhaseLocked(name, st, v1alpha1.PiNodeFailed, ReasonInstallFailed, "the installer reported: "+p.Message)
			r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeWarning, ReasonInstallFailed, "the installer reported: %s", p.Message)
		}
	}
	st.mu.Unlock()
	r.enqueue(name)
}

// setPhaseLocked moves a node to a phase and records it on disk (st.mu
// held).
func (r *Reconciler) setPhaseLocked(name string, st *piState, phase, reason, msg string) {
	st.rec.Phase, st.rec.PhaseSince, st.rec.Reason, st.rec.Message = phase, time.Now(), reason, msg
	r.records.Put(name, st.rec)
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

// Reconcile implements reconcile.Reconciler.
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
	// From the current conditions, so a transition time moves only with
	// its status (and an unchanged status is not written again).

	wait, err := r.reconcileLocked(ctx, log, n, st, &status)
	if lc := st.lastContact.Load(); lc != 0 && (status.LastSeen == nil || time.Unix(0, lc).Sub(status.LastSeen.Time) >= lastSeenStep || st.rec.Phase != n.Status.Phase) {
		t := metav1.NewTime(time.Unix(0, lc).Truncate(time.Second))
		status.LastSeen = &t
	}
	status.Phase = st.rec.Phase
	if status.Phase == "" {
		status.Phase = v1alpha1.PiNodePending
	}
	ready := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: st.rec.Reason, Message: st.rec.Message, ObservedGeneration: n.Generation}
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

// reconcileLocked runs the power and install state machine.
func (r *Reconciler) reconcileLocked(ctx context.Context, log logr.Logger, n *v1alpha1.PiNode, st *piState, status *v1alpha1.PiNodeStatus) (time.Duration, error) {
	name := n.Name
	nb := r.opts.Netboot
	if nb == nil {
		st.rec.Phase, st.rec.Reason, st.rec.Message = v1alpha1.PiNodePending, ReasonNetbootDisabled, "the daemon has no netboot: settings (--config)"
		return 0, nil
	}
	mac, _ := net.ParseMAC(n.Spec.MAC)
	ip := net.ParseIP(n.Spec.IP).To4()
	if !nb.Subnet.Contains(ip) || ip.Equal(nb.ServerIP) || ip.Equal(nb.Subnet.IP) || isBroadcast(ip, nb.Subnet) {
		r.mu.Lock()
		r.enqueueLosersLocked(r.heldLocked(name) != "")
		r.dropIndexLocked(name)
		r.mu.Unlock()
		st.rec.Phase, st.rec.Reason = v1alpha1.PiNodeFailed, ReasonInvalidNetwork
		st.rec.Message = fmt.Sprintf("ip %s is not a host address of the netboot subnet %s other than the server's %s", ip, nb.Subnet, nb.ServerIP)
		return 0, nil
	}
	if reason, other := r.index(name, mac, ip); reason != "" {
		st.rec.Phase, st.rec.Reason = v1alpha1.PiNodeFailed, reason
		st.rec.Message = fmt.Sprintf("PiNode %q declares the same %s; the first by name keeps it", other, map[string]string{ReasonDuplicateMAC: "MAC", ReasonDuplicateIP: "IP"}[reason])
		return 0, nil
	}
	r.locateLocked(ctx, log, n, st, mac)

	want := installHash(n)
	gen := *n.Spec.InstallGeneration
	now := time.Now()
	if n.Spec.Power == "Off" {
		// Kept off: no power cycle, now or for a restartedAt set meanwhile.
		st.cycleRequest = ""
		st.rec.RestartedAt, st.rec.RestartedAtSeen = n.Annotations[v1alpha1.AnnotationRestartedAt], true
		if st.rec.Cycle != nil {
			r.endCycleLocked(name, st, v1alpha1.PowerCycleCancelled, "cancelled: the spec says power: Off")
		}
		if st.rec.Phase != v1alpha1.PiNodeOff {
			if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, false); err != nil {
				st.rec.Reason, st.rec.Message = ReasonSwitchError, err.Error()
				return 0, err
			}
			r.setPhaseLocked(name, st, v1alpha1.PiNodeOff, ReasonPoweredOff, fmt.Sprintf("port %d is off (power: Off)", n.Spec.Switch.Port))
			r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeNormal, ReasonPoweredOff, "port %d off", n.Spec.Switch.Port)
		}
		return 0, nil
	}
	if wait, busy, err := r.cycleLocked(ctx, log, n, st); busy {
		return wait, err
	}
	if st.rec.Phase == v1alpha1.PiNodeOff && st.rec.FailedHash == want && !st.reinstall {
		// power: On again after Off, with the failed install not asked
		// for again: power the port and show the failure.
		if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, true); err != nil {
			st.rec.Reason, st.rec.Message = ReasonSwitchError, "power on: "+err.Error()
			return 0, err
		}
		r.setPhaseLocked(name, st, v1alpha1.PiNodeFailed, ReasonInstallFailed, "powered on again; the last install failed: bump installGeneration or reinstall")
		return 0, nil
	}
	inProgress := st.rec.Phase == v1alpha1.PiNodePoweringOff || st.rec.Phase == v1alpha1.PiNodeBooting || st.rec.Phase == v1alpha1.PiNodeInstalling
	// Has this exact install (generation + image) finished? The record
	// knows; without one (a new node, or a lost state dir) the file's
	// installedGeneration does.
	installed := status.InstalledGeneration
	needInstall := gen > 0 && st.rec.InstalledHash != want &&
		(st.rec.InstalledHash != "" || installed == nil || *installed != gen)
	begin := st.reinstall || (inProgress && st.rec.InstallHash != want) || (!inProgress && needInstall && st.rec.FailedHash != want)
	switch {
	case begin:
		reason := "the spec asks for install " + strconv.FormatInt(gen, 10)
		if st.reinstall {
			reason = "reinstall requested"
		}
		st.reinstall = false
		st.rec.InstallHash, st.rec.FailedHash = want, ""
		log.Info("reinstalling", "reason", reason)
		r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeNormal, ReasonPoweringOff, "power cycle to install: %s", reason)
		if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, false); err != nil {
			r.setPhaseLocked(name, st, v1alpha1.PiNodePoweringOff, ReasonSwitchError, err.Error())
			return 0, err
		}
		r.setPhaseLocked(name, st, v1alpha1.PiNodePoweringOff, ReasonPoweringOff, fmt.Sprintf("port %d off for %s", n.Spec.Switch.Port, nb.PowerOffTime))
		return nb.PowerOffTime, nil
	case st.rec.Phase == v1alpha1.PiNodePoweringOff:
		if d := st.rec.PhaseSince.Add(nb.PowerOffTime).Sub(now); d > 0 && st.rec.Reason != ReasonSwitchError {
			return d, nil
		}
		if st.rec.Reason == ReasonSwitchError { // the off did not go through yet
			if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, false); err != nil {
				if time.Since(st.rec.PhaseSince) > nb.BootTimeout {
					// A switch that stays unreachable fails the install
					// (with its alert) instead of retrying in silence.
					r.failLocked(name, st, ReasonSwitchError, fmt.Sprintf("the switch did not power-cycle port %d for %s: %v", n.Spec.Switch.Port, nb.BootTimeout, err))
					return 0, nil
				}
				st.rec.Message = err.Error()
				return 0, err
			}
			r.setPhaseLocked(name, st, v1alpha1.PiNodePoweringOff, ReasonPoweringOff, fmt.Sprintf("port %d off for %s", n.Spec.Switch.Port, nb.PowerOffTime))
			return nb.PowerOffTime, nil
		}
		if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, true); err != nil {
			st.rec.Reason, st.rec.Message = ReasonSwitchError, "power on: "+err.Error()
			return 0, err
		}
		r.setPhaseLocked(name, st, v1alpha1.PiNodeBooting, ReasonBooting, fmt.Sprintf("port %d on; waiting for the Pi to netboot", n.Spec.Switch.Port))
		return nb.BootTimeout, nil
	case st.rec.Phase == v1alpha1.PiNodeBooting:
		deadline := latest(st.rec.PhaseSince, time.Unix(0, st.lastContact.Load())).Add(nb.BootTimeout)
		if now.Before(deadline) {
			return deadline.Sub(now), nil
		}
		r.failLocked(name, st, ReasonBootTimeout, fmt.Sprintf("no netboot contact for %s after power-on", nb.BootTimeout))
		return 0, nil
	case st.rec.Phase == v1alpha1.PiNodeInstalling:
		deadline := latest(st.rec.PhaseSince, st.lastProgress).Add(nb.InstallTimeout)
		if now.Before(deadline) {
			return deadline.Sub(now), nil
		}
		r.failLocked(name, st, ReasonInstallTimeout, fmt.Sprintf("no progress report for %s", nb.InstallTimeout))
		return 0, nil
	case st.rec.Phase == v1alpha1.PiNodeFailed && st.rec.FailedHash == want:
		return 0, nil // until the spec changes or a reinstall is asked for
	case !needInstall:
		// Installed (by us, before, or declared with generation 0).
		if st.rec.Phase != v1alpha1.PiNodeInstalled || st.rec.InstalledHash != want {
			wasOff := st.rec.Phase == v1alpha1.PiNodeOff || st.rec.Phase == ""
			if wasOff {
				if err := r.opts.Power.SetPower(ctx, n.Spec.Switch, true); err != nil {
					st.rec.Reason, st.rec.Message = ReasonSwitchError, "power on: "+err.Error()
					return 0, err
				}
			}
			st.rec.InstallHash, st.rec.InstalledHash = want, want
			r.setPhaseLocked(name, st, v1alpha1.PiNodeInstalled, ReasonInstalled, fmt.Sprintf("generation %d installed", gen))
		}
		status.InstalledGeneration = &gen
		return 0, nil
	}
	return 0, nil
}

// failLocked ends an install with a reason (and the PiNodeInstallFailed
// alert, through the status).
func (r *Reconciler) failLocked(name string, st *piState, reason, msg string) {
	st.rec.FailedHash = st.rec.InstallHash
	r.setPhaseLocked(name, st, v1alpha1.PiNodeFailed, reason, msg)
	r.opts.Events.Eventf(v1alpha1.KindPiNode, name, events.TypeWarning, reason, "%s", msg)
}

// locateLocked refreshes the switch port the node's MAC is seen on, at
// most every 5 minutes.
func (r *Reconciler) locateLocked(ctx context.Context, log logr.Logger, n *v1alpha1.PiNode, st *piState, mac net.HardwareAddr) {
	if time.Since(st.lastLocate) < 5*time.Minute {
		return
	}
	st.lastLocate = time.Now()
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

// index claims the node's MAC and IP; on a clash the node first by name
// keeps them and the other gets the reason and the other's name.
func (r *Reconciler) index(name string, mac net.HardwareAddr, ip net.IP) (reason, other string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.heldLocked(name)
	r.dropIndexLocked(name)
	// The earlier name that holds an address keeps it; a later holder
	// loses it to us.
	for _, held := range []struct {
		m      map[string]string
		key    string
		reason string
	}{{r.byMAC, mac.String(), ReasonDuplicateMAC}, {r.byIP, ip.String(), ReasonDuplicateIP}} {
		if holder, ok := held.m[held.key]; ok && holder < name {
			r.losers[name] = true
			r.enqueueLosersLocked(before != "")
			return held.reason, holder
		}
	}
	for _, held := range []map[string]string{r.byMAC, r.byIP} {
		for k, holder := range held {
			if (k == mac.String() || k == ip.String()) && holder != name {
				delete(held, k)
				r.losers[holder] = true
				r.enqueue(holder)
			}
		}
	}
	delete(r.losers, name)
	if before != mac.String()+"/"+ip.String() {
		r.enqueueLosersLocked(true) // addresses moved: a loser may win now
	}
	r.byMAC[mac.String()], r.byIP[ip.String()] = name, name
	delete(r.unknown, mac.String()) // declared now
	return "", ""
}

// heldLocked returns "mac/ip" held by name, or "".
func (r *Reconciler) heldLocked(name string) string {
	var mac, ip string
	for k, v := range r.byMAC {
		if v == name {
			mac = k
		}
	}
	for k, v := range r.byIP {
		if v == name {
			ip = k
		}
	}
	if mac == "" && ip == "" {
		return ""
	}
	return mac + "/" + ip
}

// enqueueLosersLocked looks again at the nodes that lost an address clash.
func (r *Reconciler) enqueueLosersLocked(changed bool) {
	if !changed {
		return
	}
	for n := range r.losers {
		r.enqueue(n)
	}
}

func (r *Reconciler) dropIndexLocked(name string) {
	for k, v := range r.byMAC {
		if v == name {
			delete(r.byMAC, k)
		}
	}
	for k, v := range r.byIP {
		if v == name {
			delete(r.byIP, k)
		}
	}
}

// forget drops a deleted PiNode; its port is left as it is.
func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	r.dropIndexLocked(name)
	delete(r.nodes, name)
	r.mu.Unlock()
	r.records.Delete(name)
	r.phase.DeletePartialMatch(prometheus.Labels{"name": name})
	// A node that clashed with this one may take the addresses now.
	r.mu.Lock()
	delete(r.losers, name)
	r.enqueueLosersLocked(true)
	r.mu.Unlock()
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
