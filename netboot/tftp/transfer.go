// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// sender sends one file over a UDP socket connected to the client (the
// transfer's own TID), in windows of window blocks (RFC 7440; 1 is the
// lock-step of RFC 1350).
type sender struct {
	conn    *transferConn
	src     io.Reader
	blksize int
	window  int
	timeout time.Duration
	retries int
	closing *atomic.Bool // set when the server closes: the transfer ends

	// The blocks of the current window: blocks base..next-1 are in
	// bufs[(i-1)%window], each a DATA packet (4-byte header and data).
	bufs  [][]byte
	base  uint64 // first block not yet acknowledged
	next  uint64 // next block to read
	final uint64 // the last block, once read (0 before)
	// resentFor is the base of the window last sent again at the
	// client's request, so that it is sent again once only.
	resentFor uint64
	rbuf      []byte // for incoming packets
}

// errGaveUp ends a transfer whose client stopped answering.
var errGaveUp = errors.New("no acknowledgement from the client")

// clientError ends a transfer the client aborted with an ERROR packet.
type clientError string

func (e clientError) Error() string { return string(e) }

func newSender(conn *transferConn, src io.Reader, blksize, window int, timeout time.Duration, retries int, closing *atomic.Bool) *sender {
	s := &sender{conn: conn, src: src, blksize: blksize, window: window, timeout: timeout, retries: retries,
		closing: closing, base: 1, next: 1, rbuf: make([]byte, 1024)}
	s.bufs = make([][]byte, window)
	for i := range s.bufs {
		s.bufs[i] = make([]byte, 4, 4+blksize)
	}
	return s
}

// negotiate sends the option acknowledgement until the client answers it
// with ACK 0 (RFC 2347).
func (s *sender) negotiate(oack []byte) error {
	for try := 0; ; try++ {
		if s.closing.Load() {
			return errClosing
		}
		if _, err := s.conn.Write(oack); err != nil {
			return err
		}
		res, err := s.await(func(b uint16) bool { return b == 0 })
		if err != nil {
			return err
		}
		if res == accepted {
			return nil
		}
		if try >= s.retries {
			return errGaveUp
		}
	}
}

// send sends the whole file and returns the number of data bytes sent.
func (s *sender) send() (int64, error) {
	var sent int64
	tries := 0
	for {
		if s.closing.Load() {
			return sent, errClosing
		}
		if err := s.fill(); err != nil {
			return sent, err
		}
		for i := s.base; i < s.next; i++ {
			if _, err := s.conn.Write(s.bufs[(i-1)%uint64(s.window)]); err != nil {
				return sent, err
			}
		}
		base := s.base
		res, err := s.await(s.advance)
		if err != nil {
			return sent, err
		}
		switch res {
		case timedOut:
			if tries++; tries > s.retries {
				return sent, errGaveUp
			}
			continue
		case again: // not a retry: the client is there
			continue
		}
		tries = 0
		for i := base; i < s.base; i++ {
			sent += int64(len(s.bufs[(i-1)%uint64(s.window)]) - 4)
		}
		if s.final != 0 && s.base > s.final {
			return sent, nil
		}
	}
}

// fill reads blocks into the free places of the window.
func (s *sender) fill() error {
	for s.final == 0 && s.next < s.base+uint64(s.window) {
		b := s.bufs[(s.next-1)%uint64(s.window)][:4+s.blksize]
		binary.BigEndian.PutUint16(b, opDATA)
		binary.BigEndian.PutUint16(b[2:], uint16(s.next)) // rolls over to 0 after 65535
		n, err := io.ReadFull(s.src, b[4:])
		s.bufs[(s.next-1)%uint64(s.window)] = b[:4+n]
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			s.final = s.next
		case err != nil:
			return err
		}
		s.next++
	}
	return nil
}

// advance takes ACK b: when it acknowledges a block of the window, the
// window moves past it and advance reports true. Duplicate and stale ACKs
// are ignored (no resend on them: the Sorcerer's Apprentice bug).
func (s *sender) advance(b uint16) bool {
	// The block b stands for, counting from base-1, within the window.
	delta := uint64(b - uint16(s.base-1))
	if delta == 0 || s.base-1+delta >= s.next {
		return false
	}
	s.base += delta
	return true
}

// outcome is how a wait for an acknowledgement ended.
type outcome int

const (
	timedOut outcome = iota // nothing acceptable came in time
	accepted                // take accepted an ACK
	again                   // a windowed client asked for the window again
)

// await reads packets until take accepts an ACK, the timeout passes, or a
// windowed client asks for the window again; an ERROR from the client
// ends it with an error.
func (s *sender) await(take func(uint16) bool) (outcome, error) {
	deadline := time.Now().Add(s.timeout)
	for {
		if s.closing.Load() {
			return timedOut, errClosing
		}
		left := time.Until(deadline)
		if left <= 0 {
			return timedOut, nil
		}
		n, err := s.conn.ReadTimeout(s.rbuf, left)
		if isTimeout(err) {
			return timedOut, nil
		}
		if err != nil {
			// ICMP port unreachable: the client is gone.
			return timedOut, err
		}
		block, errMsg, ok := parseAck(s.rbuf[:n])
		if errMsg != "" {
			return timedOut, clientError(errMsg)
		}
		if !ok {
			continue
		}
		if take(block) {
			return accepted, nil
		}
		if s.window > 1 && block == uint16(s.base-1) && s.resentFor != s.base {
			// RFC 7440: a receiver that misses a block acknowledges the
			// last one it has in order; send the window again now rather
			// than at the timeout. Once per window: some receivers repeat
			// that ACK for every block that follows the gap, and answering
			// each would multiply the traffic (the Sorcerer's Apprentice
			// bug, which in lock-step is why a duplicate ACK is only ever
			// ignored).
			s.resentFor = s.base
			return again, nil
		}
	}
}
