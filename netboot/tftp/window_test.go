// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// windowClient is a minimal RFC 7440 client: it asks for blksize and
// windowsize, acknowledges the last block of every window (or the last
// block in order when one is missing), and can lose chosen blocks once.
type windowClient struct {
	t       *testing.T
	conn    *net.UDPConn
	server  *net.UDPAddr
	blksize int
	window  int
	lose    map[uint64]bool // block indexes (from 1) dropped the first time
	// nagging clients acknowledge the last block in order again for
	// every block that arrives after a gap (as some do).
	nagging bool
	acks    int
}

func (c *windowClient) send(to *net.UDPAddr, b []byte) {
	if _, err := c.conn.WriteToUDP(b, to); err != nil {
		c.t.Fatal(err)
	}
}

func ack(block uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, opACK), block)
}

// get fetches name and returns its bytes and the options the server
// acknowledged.
func (c *windowClient) get(name string) ([]byte, map[string]string) {
	c.t.Helper()
	req := binary.BigEndian.AppendUint16(nil, opRRQ)
	for _, s := range []string{name, "octet", "blksize", strconv.Itoa(c.blksize), "windowsize", strconv.Itoa(c.window), "tsize", "0"} {
		req = append(append(req, s...), 0)
	}
	c.send(c.server, req)
	buf := make([]byte, 65536)
	var tid *net.UDPAddr
	var data bytes.Buffer
	opts := map[string]string{}
	next := uint64(1) // the block expected
	inWindow := 0
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			c.t.Fatalf("after %d bytes: %v", data.Len(), err)
		}
		if tid == nil {
			tid = from
		}
		p := buf[:n]
		switch binary.BigEndian.Uint16(p) {
		case opOACK:
			f, err := splitStrings(p[2:])
			if err != nil {
				c.t.Fatal(err)
			}
			for i := 0; i+1 < len(f); i += 2 {
				opts[f[i]] = f[i+1]
			}
			if v, ok := opts["blksize"]; ok {
				c.blksize, _ = strconv.Atoi(v)
			}
			if v, ok := opts["windowsize"]; ok {
				c.window, _ = strconv.Atoi(v)
			}
			c.send(tid, ack(0))
		case opERROR:
			c.t.Fatalf("error from the server: %q", p[4:])
		case opDATA:
			block := binary.BigEndian.Uint16(p[2:])
			if block != uint16(next) {
				// Out of order after a loss: wait for the resend.
				if c.nagging {
					c.acks++
					c.send(tid, ack(uint16(next-1)))
				}
				continue
			}
			if c.lose[next] {
				delete(c.lose, next)
				// Lost: acknowledge the last block received in order,
				// which has the server resend the window from here.
				c.acks++
				c.send(tid, ack(uint16(next-1)))
				inWindow = 0
				continue
			}
			data.Write(p[4:])
			last := len(p)-4 < c.blksize
			inWindow++
			if inWindow == c.window || last {
				c.acks++
				c.send(tid, ack(block))
				inWindow = 0
			}
			next++
			if last {
				return data.Bytes(), opts
			}
		}
	}
}

func newWindowClient(t *testing.T, s *Server, blksize, window int) *windowClient {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &windowClient{t: t, conn: conn, server: s.Addr().(*net.UDPAddr), blksize: blksize, window: window}
}

// Windowed transfers (RFC 7440): every block once per window, a lost block
// resent with the rest of its window, block numbers rolling over past
// 65535, and a file that is a multiple of the block size ending with an
// empty block.
func TestWindowsize(t *testing.T) {
	fx := newFixture(t)
	rollover := pattern(70_000*16+5, 7) // 70,001 blocks of 16 bytes
	must(t, os.WriteFile(filepath.Join(fx.root, "rollover.bin"), rollover, 0o644))
	s := startServer(t, fx, "", nil)

	for _, tc := range []struct {
		name            string
		file            string
		blksize, window int
		wantWindow      string
		lose            []uint64
	}{
		{"window 16", "boot/kernel8.img", 1468, 16, "16", nil},
		{"window 16, losses", "boot/kernel8.img", 512, 16, "16", []uint64{1, 5, 16, 17, 100, 196}},
		{"exact multiple", "exact.bin", 1468, 4, "4", []uint64{4}},
		{"window capped", "start4.elf", 512, 1000, strconv.Itoa(MaxWindow), nil},
		{"lock-step", "start4.elf", 512, 1, "1", []uint64{2}},
		{"rollover", "rollover.bin", 16, 64, "64", []uint64{65535, 65536, 65537}},
		{"empty", "empty.bin", 512, 8, "8", nil},
		{"nagging client", "boot/kernel8.img", 512, 64, "64", []uint64{5, 40, 100, 101}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := fx.files[tc.file]
			if tc.file == "rollover.bin" {
				want = rollover
			}
			c := newWindowClient(t, s, tc.blksize, tc.window)
			c.nagging = strings.HasPrefix(tc.name, "nagging")
			c.lose = map[uint64]bool{}
			for _, b := range tc.lose {
				c.lose[b] = true
			}
			got, opts := c.get(tc.file)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
			}
			if opts["windowsize"] != tc.wantWindow || opts["blksize"] != strconv.Itoa(tc.blksize) || opts["tsize"] != fmt.Sprint(len(want)) {
				t.Fatalf("OACK %v, want windowsize %s, blksize %d, tsize %d", opts, tc.wantWindow, tc.blksize, len(want))
			}
			if len(c.lose) != 0 {
				t.Fatalf("blocks %v never sent", c.lose)
			}
			blocks := len(want)/tc.blksize + 1
			t.Logf("%d blocks, %d acknowledgements", blocks, c.acks)
			if w, _ := strconv.Atoi(tc.wantWindow); w > 1 && !c.nagging && c.acks > blocks/w+len(tc.lose)+2 {
				t.Fatalf("%d acknowledgements for %d blocks in windows of %d: the window was not used", c.acks, blocks, w)
			}
		})
	}
}
