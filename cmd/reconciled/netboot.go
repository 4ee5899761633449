// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/pinode"
	"github.com/reconciled/reconciled/internal/poe"
	"github.com/reconciled/reconciled/netboot/dhcp"
	"github.com/reconciled/reconciled/netboot/handshake"
	"github.com/reconciled/reconciled/netboot/tftp"
)

// snmpPower switches PoE ports and reads forwarding tables over SNMP for
// the PiNode controller.
type snmpPower struct{}

func (snmpPower) SetPower(ctx context.Context, sw v1alpha1.SwitchPort, on bool) error {
	t, err := poe.TargetFor(sw)
	if err != nil {
		return err
	}
	return poe.SetPower(ctx, t, sw.Port, on)
}

func (snmpPower) Locate(ctx context.Context, sw v1alpha1.SwitchPort, mac net.HardwareAddr) (int, error) {
	t, err := poe.TargetFor(sw)
	if err != nil {
		return 0, err
	}
	entries, err := poe.Discover(ctx, t)
	if err != nil {
		return 0, err
	}
	if e, ok := poe.PortOf(entries, mac); ok {
		return e.Port, nil
	}
	return 0, nil
}

// serialBook learns each Pi's serial number from its TFTP requests (a Pi 4
// asks for "<serial>/start4.elf" first), so later plain-name requests from
// that address get <tftpRoot>/<serial>/ where it exists.
type serialBook struct{ m sync.Map } // IP string -> serial

// serialRE is a Raspberry Pi serial as it prefixes TFTP paths.
var serialRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

func (b *serialBook) learn(ip net.IP, path string) {
	if dir, _, ok := strings.Cut(path, "/"); ok && serialRE.MatchString(dir) {
		b.m.Store(ip.String(), dir)
	}
}

func (b *serialBook) lookup(ip net.IP) (string, bool) {
	v, ok := b.m.Load(ip.String())
	if !ok {
		return "", false
	}
	return v.(string), true
}

// netbootServers are the DHCP, TFTP and handshake HTTP servers of the
// netboot: settings.
type netbootServers struct {
	dhcp *dhcp.Server
	tftp *tftp.Server
	http *http.Server
	l    net.Listener
	log  logr.Logger
}

// startNetboot opens the netboot servers (errors here stop the daemon:
// the settings asked for them).
func startNetboot(nb *Netboot, stateDir string, pis *pinode.Reconciler, log logr.Logger) (*netbootServers, error) {
	d, err := dhcp.New(dhcp.Options{Interface: nb.Interface, Port: nb.DHCPPort, ServerIP: nb.ServerIP, Subnet: nb.Subnet,
		Router: nb.Router, LeaseTime: nb.LeaseTime, StateDir: stateDir, Log: log.WithName("dhcp"),
		Lookup: func(mac net.HardwareAddr) (dhcp.Node, bool) {
			name, ip, ok := pis.Lookup(mac)
			return dhcp.Node{MAC: mac, IP: ip, Name: name}, ok
		},
		OnContact: func(n dhcp.Node, _ string) { pis.Contact(n.MAC, nil) },
		OnUnknown: pis.NoteUnknown,
	})
	if err != nil {
		return nil, fmt.Errorf("netboot dhcp: %w", err)
	}
	serials := &serialBook{}
	t, err := tftp.New(tftp.Options{Addr: net.JoinHostPort(nb.ServerIP.String(), strconv.Itoa(nb.TFTPPort)), Root: nb.TFTPRoot,
		Serial: serials.lookup,
		OnContact: func(ip net.IP, path string) {
			serials.learn(ip, path)
			pis.Contact(nil, ip)
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
	hs := &http.Server{Handler: handshake.New(pis, log.WithName("handshake")), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	return &netbootServers{dhcp: d, tftp: t, http: hs, l: l, log: log}, nil
}

// run serves until ctx is done.
func (n *netbootServers) run(ctx context.Context) {
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
	// Let a progress report in flight land before the controller closes.
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.http.Shutdown(shutdown)
	wg.Wait()
}
