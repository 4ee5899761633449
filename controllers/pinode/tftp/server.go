// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package tftp is the netboot TFTP server: it serves the files below one
// root folder read-only to Raspberry Pis (and other PXE clients), with the
// blksize and tsize options, and never anything outside that folder.
//
// It is built on github.com/pin/tftp/v3, which answers every transfer
// from its own UDP socket. A process that serves in a network namespace
// must therefore run entirely inside it.
//
// # Confinement
//
// A request name first goes through CleanPath (no "..", no absolute
// names, no backslashes, NUL or other control characters). The result is
// opened through an os.Root on the root folder, which resolves symlinks
// itself and refuses any that lead outside the root, and only regular
// files are served. Refusals are answered with a TFTP ERROR packet.
// pin/tftp always sends error code 1 (file not found); the message tells
// "file not found" from "access violation: ...".
//
// # Options
//
// blksize (RFC 2348) is granted up to the MTU of the interface the request
// came in on, less the IP and UDP headers (1472 on Ethernet). tsize (RFC
// 2349) is announced in octet mode with the size of the file when it was
// opened; not in netascii mode (the bytes sent differ from the file, as
// with tftpd-hpa) and not for empty files (pin/tftp takes tsize 0 for
// "unknown"). There is no windowsize (RFC 7440): pin/tftp lacks it.
//
// # Per-Pi folders
//
// A request for P from a client whose IP Options.Serial maps to serial S
// is answered, in this order, with the first regular file found:
//
//  1. <Root>/S/P, unless P already starts with "S/";
//  2. <Root>/P, exactly as requested.
//
// So a Raspberry Pi 4, which itself asks for "S/start4.elf" and falls
// back to "start4.elf" when that is missing, gets exactly what it asks
// for, and a client that asks for plain names (a Pi 3 after bootcode.bin,
// iPXE) still gets its own folder's copy where there is one. Any file
// below the root may be read by any client; the folders select, they do
// not protect. A symlink that leads out of the root refuses the whole
// request, even when a later candidate exists.
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	pintftp "github.com/pin/tftp/v3"
)

// Options configures a Server.
type Options struct {
	// Addr is the UDP address to listen on, such as "10.77.0.1:69".
	// Empty means ":69". Port 0 picks a free port (see Server.Addr).
	Addr string
	// Root is the folder that is served. It must exist.
	Root string
	// Serial maps a client IP to the serial number of the Raspberry Pi
	// that has it, for the per-Pi folder <Root>/<serial>/. Nil, ok false,
	// or a serial that is not a single plain folder name disable the
	// per-Pi lookup for that client. It is called once per read request,
	// from the transfer's goroutine, and must not block.
	Serial func(remote net.IP) (serial string, ok bool)
	// OnContact, if not nil, is called once for every read request,
	// served or refused, with the client's IP and the file name exactly
	// as the client sent it (untrusted: quote it before printing). It is
	// called before the transfer starts, from the transfer's goroutine,
	// and must not block. Write requests are not contacts.
	OnContact func(remote net.IP, path string)
	// Timeout is how long a transfer waits for an acknowledgement
	// before it sends the block again; after Retries+1 sends in vain it
	// gives up. Zero means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a block is sent again. Zero means
	// DefaultRetries.
	Retries int
	// Log receives refusals at V(0) for access violations, and served
	// transfers and missing files at V(1). The zero Logger discards.
	Log logr.Logger
}

// Defaults for Options.
const (
	// DefaultTimeout is tftpd-hpa's retransmission timeout. pin/tftp's
	// own default (5 s, plus up to 1 s of random back-off) stalls a Pi
	// for seconds per lost packet.
	DefaultTimeout = time.Second
	// DefaultRetries is pin/tftp's default.
	DefaultRetries = 5
)

// Server is a read-only TFTP server confined to one root folder. Create it
// with New, run it with Serve and stop it with Close or by cancelling the
// context given to Serve.
type Server struct {
	log       logr.Logger
	serial    func(net.IP) (string, bool)
	onContact func(net.IP, string)
	root      *os.Root
	conn      *net.UDPConn
	srv       *pintftp.Server

	serving   atomic.Bool
	closing   atomic.Bool
	closeOnce sync.Once
}

// The messages of the TFTP ERROR packets that refuse a request (pin/tftp
// sends them all with error code 1). The messages for refused names add
// CleanPath's reason after ErrAccess's text.
var (
	// ErrNotFound means there is no regular file of that name below
	// the root (for this client: see the package comment).
	ErrNotFound = errors.New("file not found")
	// ErrAccess means the name is not acceptable (see CleanPath), leads
	// out of the root, or names something that cannot be read.
	ErrAccess = errors.New("access violation")
	// ErrReadOnly answers every write request.
	ErrReadOnly = errors.New("access violation: read-only server")
	// errClosing aborts transfers in flight when the server closes.
	errClosing = errors.New("server shutting down")
)

// New opens the root folder and binds the UDP socket, so that a missing
// folder or a port in use is reported here and not by Serve. The caller
// must call Close (or run Serve until its context ends) to release them.
func New(o Options) (*Server, error) {
	if o.Root == "" {
		return nil, errors.New("tftp: no root folder")
	}
	root, err := os.OpenRoot(o.Root)
	if err != nil {
		return nil, fmt.Errorf("tftp: open root: %w", err)
	}
	addr := o.Addr
	if addr == "" {
		addr = ":69"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("tftp: listen address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("tftp: listen: %w", err)
	}
	s := &Server{
		log:       o.Log,
		serial:    o.Serial,
		onContact: o.OnContact,
		root:      root,
		conn:      conn,
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	s.srv = pintftp.NewServer(s.handleRead, s.handleWrite)
	s.srv.SetHook(hook{s.log})
	s.srv.SetTimeout(o.Timeout)
	s.srv.SetRetries(o.Retries)
	// Resend as soon as the timeout expires: no random pause on top.
	s.srv.SetBackoff(func(int) time.Duration { return 0 })
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Serve answers requests until ctx is done or Close is called, then waits
// for the transfers in flight to end (see Close) and returns nil. It
// returns an error if called twice.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("tftp: Serve called twice")
	}
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	s.log.Info("serving TFTP", "addr", s.Addr().String(), "root", s.root.Name())
	err := s.srv.Serve(s.conn)
	s.Close()
	return err
}

// Close stops listening and ends the transfers in flight: each is aborted
// with a TFTP error at its next block, so Close blocks until then (at most
// Timeout times Retries+1, 6 s by default, for a client that stopped
// answering). It is safe to call more than once and concurrently with
// Serve; later calls wait for the first.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.srv.Shutdown()
		s.conn.Close()
		s.root.Close()
	})
}

// handleRead serves one read request.
func (s *Server) handleRead(req string, rf io.ReaderFrom) error {
	var remote net.IP
	if ot, ok := rf.(pintftp.OutgoingTransfer); ok {
		ra := ot.RemoteAddr()
		remote = ra.IP
		if v4 := remote.To4(); v4 != nil {
			remote = v4
		}
	}
	if s.onContact != nil {
		s.onContact(remote, req)
	}
	start := time.Now()
	f, name, err := s.open(remote, req)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.log.V(1).Info("file not found", "remote", remote.String(), "path", req)
		} else {
			s.log.Info("refused TFTP request", "remote", remote.String(), "path", req, "reason", err.Error())
		}
		return err
	}
	defer f.Close()
	r, err := newFileReader(f, &s.closing)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAccess, err)
	}
	n, err := rf.ReadFrom(r)
	if err != nil {
		// pin/tftp has already sent the ERROR packet (or the client
		// went away); log here and report nothing more.
		s.log.V(1).Info("transfer failed", "remote", remote.String(), "path", name, "bytes", n, "error", err.Error())
		return nil
	}
	s.log.V(1).Info("served", "remote", remote.String(), "path", name, "bytes", n, "duration", time.Since(start).String())
	return nil
}

// handleWrite refuses every write request.
func (s *Server) handleWrite(req string, wt io.WriterTo) error {
	var remote string
	if it, ok := wt.(pintftp.IncomingTransfer); ok {
		ra := it.RemoteAddr()
		remote = ra.IP.String()
	}
	s.log.Info("refused TFTP write request", "remote", remote, "path", req)
	return ErrReadOnly
}

// candidates returns the names to try, in order, for request p (already
// cleaned) from remote.
func (s *Server) candidates(remote net.IP, p string) []string {
	if s.serial == nil || remote == nil {
		return []string{p}
	}
	serial, ok := s.serial(remote)
	if !ok || !validSerial(serial) || strings.HasPrefix(p, serial+"/") {
		return []string{p}
	}
	return []string{serial + "/" + p, p}
}

// open finds the file that answers request req from remote (see the
// package comment) and returns it with its name relative to the root.
// Errors wrap ErrNotFound or ErrAccess.
func (s *Server) open(remote net.IP, req string) (*os.File, string, error) {
	p, err := CleanPath(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrAccess, err)
	}
	for _, name := range s.candidates(remote, p) {
		// O_NONBLOCK: opening a FIFO must not hang the transfer; only
		// regular files are served, and their reads never block.
		f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			// Escapes from the root, permission denied, symlink loops.
			return nil, "", ErrAccess
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, "", ErrAccess
		}
		if st.IsDir() {
			f.Close()
			continue
		}
		if !st.Mode().IsRegular() {
			f.Close()
			return nil, "", fmt.Errorf("%w: not a regular file", ErrAccess)
		}
		return f, name, nil
	}
	return nil, "", ErrNotFound
}

// hook logs pin/tftp's failures that no handler saw (bad request packets).
type hook struct{ log logr.Logger }

func (h hook) OnSuccess(pintftp.TransferStats) {}

func (h hook) OnFailure(st pintftp.TransferStats, err error) {
	if st.Filename == "" {
		h.log.V(1).Info("bad TFTP request", "remote", st.RemoteAddr.String(), "error", err.Error())
	}
}
