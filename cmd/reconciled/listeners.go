// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apiserver"
)

// listener is one API listener; trusted ones (the unix socket) may write
// without a token.
type listener struct {
	net.Listener
	trusted bool
}

// openListeners opens the TCP listener (or takes a socket-activated one)
// and the unix socket (or takes it from systemd when it hands over one at
// the --socket path). ownSocket reports that the daemon created the unix
// socket file and must remove it at exit. A socket the daemon creates gets
// mode 0660 and, when socketGID >= 0, that group.
func openListeners(f *flags, socketGID int, log logr.Logger) (out []listener, ownSocket bool, err error) {
	activated, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	socketHandedOver := false
	for _, l := range activated {
		if l == nil {
			continue
		}
		_, isUnix := l.(*net.UnixListener)
		if isUnix && f.socket != "" && filepath.Clean(l.Addr().String()) == filepath.Clean(f.socket) {
			socketHandedOver = true
		}
		out = append(out, listener{l, isUnix})
		log.Info("using socket-activated listener", "addr", l.Addr().String())
	}
	if len(activated) == 0 && f.listen != "" {
		l, err := net.Listen("tcp", f.listen)
		if err != nil {
			return nil, false, fmt.Errorf("--listen: %w", err)
		}
		out = append(out, listener{l, false})
	}
	if f.socket != "" && !socketHandedOver {
		if err := os.MkdirAll(filepath.Dir(f.socket), 0o750); err != nil {
			return nil, false, err
		}
		if c, err := net.Dial("unix", f.socket); err == nil {
			c.Close()
			return nil, false, fmt.Errorf("--socket %s: another reconciled is serving it", f.socket)
		}
		os.Remove(f.socket)
		l, err := net.Listen("unix", f.socket)
		if err != nil {
			return nil, false, fmt.Errorf("--socket: %w", err)
		}
		if err := os.Chmod(f.socket, 0o660); err != nil {
			l.Close()
			return nil, false, fmt.Errorf("--socket: %w", err)
		}
		if socketGID >= 0 {
			if err := os.Chown(f.socket, -1, socketGID); err != nil {
				l.Close()
				return nil, false, fmt.Errorf("--socket-group %s: %w", f.socketGroup, err)
			}
		}
		out = append(out, listener{l, true})
		ownSocket = true
	}
	if err := serveTLS(f, out); err != nil {
		for _, l := range out {
			l.Close()
		}
		return nil, false, err
	}
	return out, ownSocket, nil
}

// serveTLS wraps the TCP listeners in TLS with --tls-cert-file and
// --tls-key-file (the unix socket stays plain: its peer is checked by the
// kernel).
func serveTLS(f *flags, ls []listener) error {
	if f.tlsCertFile == "" && f.tlsKeyFile == "" {
		return nil
	}
	if f.tlsCertFile == "" || f.tlsKeyFile == "" {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCertFile, f.tlsKeyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert-file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	for i, l := range ls {
		if !l.trusted {
			ls[i].Listener = tls.NewListener(l.Listener, cfg)
		}
	}
	return nil
}

// lookupGroup resolves --socket-group (a group name or a numeric gid).
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			g, err = user.LookupGroupId(name)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("--socket-group %q: unknown group: %w", name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("--socket-group %q: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}

// serve is the runner's part for one API listener: a listener that fails
// is logged and the daemon keeps its other listeners, as before.
func serve(api *apiserver.Server, l listener, log logr.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := api.Serve(ctx, l.Listener, l.trusted); err != nil {
			log.Error(err, "API listener stopped", "addr", l.Addr().String())
		}
		return nil
	}
}
