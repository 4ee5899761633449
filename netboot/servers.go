// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package netboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"

	config "github.com/reconciled/reconciled/apis/config/v1alpha1"
	"github.com/reconciled/reconciled/netboot/dhcp"
	"github.com/reconciled/reconciled/netboot/handshake"
	"github.com/reconciled/reconciled/netboot/tftp"
)

// Observer is told what the netboot servers see, and plans the handshake:
// the PiNode controller.
type Observer interface {
	handshake.Planner
	// Contact records a DHCP (by MAC) or TFTP (by IP) request of a node.
	Contact(mac net.HardwareAddr, ip net.IP)
	// NoteUnknown records a DHCP request from a MAC no node declares.
	NoteUnknown(mac net.HardwareAddr, vendorClass string)
}

// Servers are the DHCP, TFTP and handshake HTTP servers of the netboot:
// settings. DHCP answers from the Index alone; what they see goes to the
// Observer.
type Servers struct {
	dhcp *dhcp.Server
	tftp *tftp.Server
	http *http.Server
	l    net.Listener
	log  logr.Logger
}

// NewServers opens the servers' sockets and the DHCP lease file (in
// stateDir). An error here stops the daemon: the settings asked for them.
func NewServers(nb *config.NetbootValues, stateDir string, index *Index, obs Observer, log logr.Logger) (*Servers, error) {
	d, err := dhcp.New(dhcp.Options{Interface: nb.Interface, Port: nb.DHCPPort, ServerIP: nb.ServerIP, Subnet: nb.Subnet,
		Router: nb.Router, LeaseTime: nb.LeaseTime, StateDir: stateDir, Log: log.WithName("dhcp"),
		Lookup: func(mac net.HardwareAddr) (dhcp.Node, bool) {
			name, ip, ok := index.Lookup(mac)
			return dhcp.Node{MAC: mac, IP: ip, Name: name}, ok
		},
		OnContact: func(n dhcp.Node, _ string) { obs.Contact(n.MAC, nil) },
		OnUnknown: obs.NoteUnknown,
	})
	if err != nil {
		return nil, fmt.Errorf("netboot dhcp: %w", err)
	}
	serials := &tftp.SerialBook{}
	t, err := tftp.New(tftp.Options{Addr: net.JoinHostPort(nb.ServerIP.String(), strconv.Itoa(nb.TFTPPort)), Root: nb.TFTPRoot,
		Serial: serials.Lookup,
		OnContact: func(ip net.IP, path string) {
			serials.Learn(ip, path)
			obs.Contact(nil, ip)
		}, Log: log.WithName("tftp")})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("netboot tftp: %w", err)
	}
	l, err := net.Listen("tcp", nb.HTTPAddr)
	if err != nil {
		d.Close()
		t.Close()
		return nil, fmt.Errorf("netboot httpAddr: %w", err)
	}
	hs := &http.Server{Handler: handshake.New(obs, log.WithName("handshake")), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	return &Servers{dhcp: d, tftp: t, http: hs, l: l, log: log}, nil
}

// Start serves until ctx is done, then closes the servers: a progress
// report in flight gets 5 s to land.
func (n *Servers) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := n.dhcp.Serve(ctx); err != nil && !errors.Is(err, dhcp.ErrClosed) && ctx.Err() == nil {
			n.log.Error(err, "DHCP server stopped")
		}
	})
	wg.Go(func() {
		if err := n.tftp.Serve(ctx); err != nil && ctx.Err() == nil {
			n.log.Error(err, "TFTP server stopped")
		}
	})
	wg.Go(func() {
		if err := n.http.Serve(n.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error(err, "netboot HTTP server stopped")
		}
	})
	n.log.Info("netboot serving", "dhcp", n.dhcp.StatePath(), "tftp", n.tftp.Addr().String(), "http", n.l.Addr().String())
	<-ctx.Done()
	n.dhcp.Close()
	n.tftp.Close()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.http.Shutdown(shutdown)
	wg.Wait()
	return nil
}
