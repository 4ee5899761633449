// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	pintftp "github.com/pin/tftp/v3"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// fixture is a root folder with boot files, a per-Pi folder and hostile
// symlinks, next to a secret that must never be served.
type fixture struct {
	root, secret string
	files        map[string][]byte // name below root -> content
}

const (
	testSerial = "abcdef01"
	secretText = "the secret outside the root"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{
		root:   filepath.Join(dir, "root"),
		secret: filepath.Join(dir, "secret.txt"),
		files: map[string][]byte{
			"start4.elf":                pattern(3*512+17, 1),
			"cmdline.txt":               []byte("console=serial0 root=/dev/nfs\n"),
			"exact.bin":                 pattern(4*1468, 2), // a multiple of both block sizes
			"empty.bin":                 {},
			"boot/kernel8.img":          pattern(100_000, 3),
			testSerial + "/cmdline.txt": []byte("console=serial0 this-pi-only\n"),
			"other01/cmdline.txt":       []byte("another pi\n"),
		},
	}
	for name, data := range fx.files {
		p := filepath.Join(fx.root, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, data, 0o644))
	}
	must(t, os.WriteFile(fx.secret, []byte(secretText), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "outdir"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "outdir", "f"), []byte(secretText), 0o644))
	// Symlinks: out of the root (relative and absolute, file and
	// folder), inside the root (allowed), a loop, a dangling one.
	must(t, os.Symlink("../secret.txt", filepath.Join(fx.root, "escape-rel")))
	must(t, os.Symlink(fx.secret, filepath.Join(fx.root, "escape-abs")))
	must(t, os.Symlink("../outdir", filepath.Join(fx.root, "escape-dir")))
	must(t, os.Symlink("/etc", filepath.Join(fx.root, "etc")))
	must(t, os.Symlink("boot/kernel8.img", filepath.Join(fx.root, "kernel-link")))
	must(t, os.Symlink("../start4.elf", filepath.Join(fx.root, "boot", "up-link")))
	must(t, os.Symlink("loop", filepath.Join(fx.root, "loop")))
	must(t, os.Symlink("nowhere", filepath.Join(fx.root, "dangling")))
	must(t, os.Symlink("../../secret.txt", filepath.Join(fx.root, testSerial, "start4.elf")))
	must(t, syscall.Mkfifo(filepath.Join(fx.root, "fifo"), 0o644))
	return fx
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// contacts records OnContact calls.
type contacts struct {
	mu    sync.Mutex
	paths []string
}

func (c *contacts) add(_ net.IP, p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = append(c.paths, p)
}

func (c *contacts) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

// startServer serves fx on loopback; serial, if not empty, is the serial
// of every client.
func startServer(t *testing.T, fx *fixture, serial string, c *contacts) *Server {
	t.Helper()
	o := Options{Addr: "127.0.0.1:0", Root: fx.root, Log: testr.NewWithOptions(t, testr.Options{Verbosity: 1})}
	if serial != "" {
		o.Serial = func(ip net.IP) (string, bool) { return serial, ip.Equal(net.IPv4(127, 0, 0, 1)) }
	}
	if c != nil {
		o.OnContact = c.add
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return 10s after cancel")
		}
	})
	return s
}

func client(t testing.TB, s *Server, blksize int) *pintftp.Client {
	t.Helper()
	c, err := pintftp.NewClient(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(2 * time.Second)
	c.SetRetries(2)
	if blksize != 0 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(true)
	return c
}

// get downloads name; tsize is the announced size (-1 if none).
func get(c *pintftp.Client, name string) (data []byte, tsize int64, err error) {
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, -1, err
	}
	tsize = -1
	if it, ok := wt.(pintftp.IncomingTransfer); ok {
		if n, ok := it.Size(); ok {
			tsize = n
		}
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, tsize, err
	}
	return buf.Bytes(), tsize, nil
}

func TestServeConfinement(t *testing.T) {
	fx := newFixture(t)
	c := &contacts{}
	s := startServer(t, fx, "", c)
	tests := map[string]struct {
		req     string
		want    string // file below root whose content is expected
		wantErr string // substring of the TFTP error
	}{
		"plain file":              {req: "start4.elf", want: "start4.elf"},
		"nested file":             {req: "boot/kernel8.img", want: "boot/kernel8.img"},
		"dot and double slash":    {req: "./boot//kernel8.img", want: "boot/kernel8.img"},
		"serial path as asked":    {req: testSerial + "/cmdline.txt", want: testSerial + "/cmdline.txt"},
		"empty file":              {req: "empty.bin", want: "empty.bin"},
		"block multiple":          {req: "exact.bin", want: "exact.bin"},
		"symlink inside root":     {req: "kernel-link", want: "boot/kernel8.img"},
		"symlink up inside root":  {req: "boot/up-link", want: "start4.elf"},
		"missing":                 {req: "nope.bin", wantErr: "file not found"},
		"file as folder":          {req: "start4.elf/x", wantErr: "file not found"},
		"directory":               {req: "boot", wantErr: "file not found"},
		"dangling symlink":        {req: "dangling", wantErr: "file not found"},
		"dotdot":                  {req: "../secret.txt", wantErr: "access violation"},
		"dotdot inside":           {req: "boot/../start4.elf", wantErr: "access violation"},
		"deep dotdot":             {req: "boot/../../secret.txt", wantErr: "access violation"},
		"absolute":                {req: "/etc/passwd", wantErr: "access violation"},
		"absolute to root file":   {req: "/start4.elf", wantErr: "access violation"},
		"backslash":               {req: `..\secret.txt`, wantErr: "access violation"},
		"backslash name":          {req: `boot\kernel8.img`, wantErr: "access violation"},
		"control char":            {req: "start4.elf\n", wantErr: "access violation"},
		"trailing slash":          {req: "boot/", wantErr: "access violation"},
		"symlink out relative":    {req: "escape-rel", wantErr: "access violation"},
		"symlink out absolute":    {req: "escape-abs", wantErr: "access violation"},
		"through symlinked dir":   {req: "escape-dir/f", wantErr: "access violation"},
		"symlink to /etc":         {req: "etc/passwd", wantErr: "access violation"},
		"symlink loop":            {req: "loop", wantErr: "access violation"},
		"fifo":                    {req: "fifo", wantErr: "access violation"},
		"serial symlink out":      {req: testSerial + "/start4.elf", wantErr: "access violation"},
		"dotdot hidden by prefix": {req: "boot/./../../secret.txt", wantErr: "access violation"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, bs := range []int{0, 1468} {
				data, tsize, err := get(client(t, s, bs), tc.req)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("blksize %d: got err %v (%d bytes), want error containing %q", bs, err, len(data), tc.wantErr)
					}
					if bytes.Contains(data, []byte(secretText)) {
						t.Fatalf("served the secret")
					}
					continue
				}
				if err != nil {
					t.Fatalf("blksize %d: %v", bs, err)
				}
				want := fx.files[tc.want]
				if !bytes.Equal(data, want) {
					t.Fatalf("blksize %d: got %d bytes, want the %d of %s", bs, len(data), len(want), tc.want)
				}
				// pin/tftp uses tsize "0" to mean "not known" and never
				// announces it; every other size is announced.
				if len(want) > 0 && tsize != int64(len(want)) {
					t.Fatalf("blksize %d: tsize %d, want %d", bs, tsize, len(want))
				}
			}
		})
	}
	if n := len(c.get()); n != 2*len(tests) {
		t.Errorf("OnContact called %d times, want %d (one per request)", n, 2*len(tests))
	}
}

func TestServePerSerialFolder(t *testing.T) {
	fx := newFixture(t)
	s := startServer(t, fx, testSerial, nil)
	// Another client (no serial) is simulated by a second server whose
	// Serial never matches.
	plain := startServer(t, fx, "", nil)
	tests := map[string]struct {
		srv     *Server
		req     string
		want    string
		wantErr string
	}{
		"own folder first":         {srv: s, req: "cmdline.txt", want: testSerial + "/cmdline.txt"},
		"falls back to root":       {srv: s, req: "boot/kernel8.img", want: "boot/kernel8.img"},
		"asked with prefix":        {srv: s, req: testSerial + "/cmdline.txt", want: testSerial + "/cmdline.txt"},
		"prefix not doubled":       {srv: s, req: testSerial + "/kernel-x", wantErr: "file not found"},
		"prefixed missing no fall": {srv: s, req: testSerial + "/boot/kernel8.img", wantErr: "file not found"},
		"other pi's folder":        {srv: s, req: "other01/cmdline.txt", want: "other01/cmdline.txt"},
		"escaping serial file":     {srv: s, req: "start4.elf", wantErr: "access violation"},
		"no serial gets root":      {srv: plain, req: "cmdline.txt", want: "cmdline.txt"},
		"no serial root start4":    {srv: plain, req: "start4.elf", want: "start4.elf"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data, _, err := get(client(t, tc.srv, 0), tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(fx.files[tc.want]), string(data)); diff != "" {
				t.Fatalf("content (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	tests := map[string]struct {
		serial string
		ok     bool
		req    string
		want   []string
	}{
		"no serial":       {req: "a", want: []string{"a"}},
		"serial first":    {serial: "s1", ok: true, req: "a/b", want: []string{"s1/a/b", "a/b"}},
		"already prefix":  {serial: "s1", ok: true, req: "s1/a", want: []string{"s1/a"}},
		"prefix is name":  {serial: "s1", ok: true, req: "s1", want: []string{"s1/s1", "s1"}},
		"not ok":          {serial: "s1", req: "a", want: []string{"a"}},
		"bad serial dots": {serial: "..", ok: true, req: "a", want: []string{"a"}},
		"bad serial path": {serial: "x/y", ok: true, req: "a", want: []string{"a"}},
		"bad serial abs":  {serial: "/etc", ok: true, req: "a", want: []string{"a"}},
		"empty serial":    {serial: "", ok: true, req: "a", want: []string{"a"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &Server{}
			if tc.serial != "" || tc.ok {
				s.serial = func(net.IP) (string, bool) { return tc.serial, tc.ok }
			}
			got := s.candidates(net.IPv4(10, 0, 0, 1), tc.req)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteRefused(t *testing.T) {
	fx := newFixture(t)
	s := startServer(t, fx, "", nil)
	for name, file := range map[string]string{"new file": "upload.bin", "existing": "cmdline.txt", "traversal": "../evil"} {
		t.Run(name, func(t *testing.T) {
			c := client(t, s, 0)
			rf, err := c.Send(file, "octet")
			if err == nil {
				_, err = rf.ReadFrom(bytes.NewReader([]byte("overwritten")))
			}
			if err == nil || !strings.Contains(err.Error(), "read-only") {
				t.Fatalf("write: got err %v, want a read-only TFTP error", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(fx.root, "upload.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload.bin exists after a refused write: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(fx.root, "cmdline.txt")); !bytes.Equal(got, fx.files["cmdline.txt"]) {
		t.Errorf("cmdline.txt changed: %q", got)
	}
}

func TestNew(t *testing.T) {
	fx := newFixture(t)
	if _, err := New(Options{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("New without Root: no error")
	}
	if _, err := New(Options{Addr: "127.0.0.1:0", Root: filepath.Join(fx.root, "missing")}); err == nil {
		t.Error("New with a missing root: no error")
	}
	s, err := New(Options{Addr: "127.0.0.1:0", Root: fx.root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Addr: s.Addr().String(), Root: fx.root}); err == nil {
		t.Error("New on a port in use: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	// The server answers before we stop it.
	if _, _, err := get(client(t, s, 0), "cmdline.txt"); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ctx); err == nil {
		t.Error("second Serve: no error")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	s.Close() // twice is fine
}

// TestCloseAbortsTransfers: a transfer in flight ends at its next block
// when the server closes, with a TFTP error to the client.
func TestCloseAbortsTransfers(t *testing.T) {
	fx := newFixture(t)
	big := filepath.Join(fx.root, "big.bin")
	must(t, os.WriteFile(big, pattern(4<<20, 9), 0o644))
	s, err := New(Options{Addr: "127.0.0.1:0", Root: fx.root})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background())
	c := client(t, s, 0)
	wt, err := c.Receive("big.bin", "octet")
	if err != nil {
		t.Fatal(err)
	}
	// Read a little, close the server, then let the client go on.
	pr, pw := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := wt.WriteTo(pw)
		pw.Close()
		errc <- err
	}()
	if _, err := pr.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(pr) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "shutting down") {
			t.Errorf("client: got %v, want the shutdown error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("transfer still running 10s after Close")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

// TestCloseWithDeadClient: a client that asked for a file and went away
// does not hold Close up: the transfer waiting for its ACK is woken.
func TestCloseWithDeadClient(t *testing.T) {
	fx := newFixture(t)
	s, err := New(Options{Addr: "127.0.0.1:0", Root: fx.root, Timeout: 100 * time.Millisecond, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	contacted := make(chan struct{}, 1)
	s.onContact = func(net.IP, string) { contacted <- struct{}{} }
	go s.Serve(context.Background())
	conn, err := net.DialUDP("udp", nil, s.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// RRQ for start4.elf, octet; then never acknowledge anything.
	if _, err := conn.Write([]byte("\x00\x01start4.elf\x00octet\x00")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-contacted:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	start := time.Now()
	s.Close()
	// Close wakes the transfer at once; the bound only catches a Close
	// that waits out the client's retries (or for ever).
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v with a dead client, want at once", d)
	}
}

// TestMaxTransfers: requests beyond MaxTransfers in flight are refused at
// once with an error, and served again once a slot is free.
func TestMaxTransfers(t *testing.T) {
	fx := newFixture(t)
	s, err := New(Options{Addr: "127.0.0.1:0", Root: fx.root, MaxTransfers: 2, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background())
	t.Cleanup(s.Close)
	rrq := []byte("\x00\x01start4.elf\x00octet\x00")
	// Two clients that ask and never acknowledge hold both slots.
	type holder struct {
		c   *net.UDPConn
		tid *net.UDPAddr
	}
	var holders []holder
	for range 2 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.WriteToUDP(rrq, s.Addr().(*net.UDPAddr))
		buf := make([]byte, 1024)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, tid, err := c.ReadFromUDP(buf)
		if err != nil || buf[1] != opDATA {
			t.Fatalf("holder: %v %q", err, buf[:n])
		}
		holders = append(holders, holder{c, tid})
	}
	third, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.WriteToUDP(rrq, s.Addr().(*net.UDPAddr))
	buf := make([]byte, 1024)
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := third.ReadFromUDP(buf)
	if err != nil || buf[1] != opERROR || !strings.Contains(string(buf[4:n]), "too many transfers") {
		t.Fatalf("third request: %v %q, want a busy error", err, buf[:n])
	}
	// A holder gives up (ERROR from the client): its slot is free again.
	holders[0].c.WriteToUDP(appendError(nil, errCodeUndefined, "bye"), holders[0].tid)
	waitfor.Within(t, 10*time.Second, "a free slot serves again", func() bool {
		data, _, err := get(client(t, s, 0), "cmdline.txt")
		return err == nil && string(data) == string(fx.files["cmdline.txt"])
	})
}
