// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package pinode

import (
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/netboot/handshake"
)

// What the netboot servers see of the nodes: DHCP and TFTP contacts,
// unknown MACs, and the handshake (plan and progress reports). The
// handlers only record what they saw and enqueue the node; Reconcile is
// the only writer of its phase.

// lastSeenStep is how far the last contact must have moved for
// status.lastSeen to be written again: traffic does not rewrite the file.
const lastSeenStep = 30 * time.Second

// Contact records DHCP or TFTP traffic from a node (by MAC or by IP; nil
// for the one not known). It is called for every packet, so it only
// reconciles the node when the contact is news: status.lastSeen moves in
// steps of lastSeenStep, and a Booting node's deadline reads the last
// contact itself when it comes due.
func (r *Reconciler) Contact(mac net.HardwareAddr, ip net.IP) {
	name, ok := "", false
	if mac != nil {
		name, ok = r.index.ByMAC(mac)
	} else if ip != nil {
		name, ok = r.index.ByIP(ip)
	}
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
	return r.index.Lookup(mac)
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
	now := time.Now()
	st.lastContact.Store(now.UnixNano())
	st.seenMu.Lock()
	rec := st.published
	installing := (rec.Phase == v1alpha1.PiNodeBooting || rec.Phase == v1alpha1.PiNodeInstalling) && rec.InstallHash == installHash(n) && n.Spec.Image != nil
	if installing {
		st.planAt = now // Reconcile moves the node to Installing
	}
	st.seenMu.Unlock()
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

// Report implements handshake.Planner: the report is recorded, and the
// next reconcile moves the install along.
func (r *Reconciler) Report(mac net.HardwareAddr, p handshake.Progress) {
	name, _, ok := r.Lookup(mac)
	if !ok {
		return
	}
	st := r.state(name)
	now := time.Now()
	st.lastContact.Store(now.UnixNano())
	st.seenMu.Lock()
	if len(st.reports) < maxReports {
		st.reports = append(st.reports, report{Progress: p, at: now})
	} else {
		st.reports[len(st.reports)-1] = report{Progress: p, at: now} // the latest matters
	}
	st.seenMu.Unlock()
	r.enqueue(name)
}

// maxReports bounds the reports kept between two reconciles.
const maxReports = 64
