// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reconciled/reconciled/internal/atomicfile"

	"github.com/go-logr/logr"
)

const leaseHeader = "# reconciled dhcp leases v1\n"

// minSyncGap is the least time between the starts of two fsyncs of the
// lease file: at most 500 fsyncs a second, however many leases. An ACK
// waits at most this long plus one write and fsync.
const minSyncGap = 2 * time.Millisecond

// leaseStore appends lease records to the lease file from one writer
// goroutine, with one fsync per batch (group commit).
type leaseStore struct {
	path    string
	log     logr.Logger
	deliver func(pkts []packet)

	// mu is the Server's mutex; it guards leases and the fields below.
	mu      *sync.Mutex
	leases  map[[6]byte]Lease
	buf     []byte
	acks    []packet
	spare   []byte
	spareAk []packet
	closed  bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	// Owned by the writer goroutine (and openLeaseStore before it).
	f       *os.File
	records int // records in the file
	failing bool
	syncs   int // fsyncs (batches) so far, for tests and benchmarks
}

// openLeaseStore loads the lease file in dir into leases (dropping
// expired leases), rewrites it when it holds superseded records, and
// starts the writer.
func openLeaseStore(dir string, mu *sync.Mutex, leases map[[6]byte]Lease, now time.Time, deliver func([]packet), log logr.Logger) (*leaseStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("dhcp: state dir: %w", err)
	}
	st := &leaseStore{
		path:    filepath.Join(dir, LeaseFile),
		log:     log,
		deliver: deliver,
		mu:      mu,
		leases:  leases,
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	records, skipped, err := loadLeases(st.path, leases, now)
	if err != nil {
		return nil, err
	}
	if skipped > 0 {
		log.Info("skipped unreadable lease records", "path", st.path, "count", skipped)
	}
	// A torn last record (a crash mid-append) or any other unreadable
	// line: rewrite, so the next append does not continue a broken line.
	if records != len(leases) || records == 0 || skipped > 0 {
		if err := st.rewrite(st.snapshot()); err != nil {
			return nil, err
		}
	} else {
		f, err := os.OpenFile(st.path, os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("dhcp: open lease file: %w", err)
		}
		st.f, st.records = f, records
	}
	go st.writer()
	return st, nil
}

// loadLeases reads path into leases and returns how many records it
// read and how many lines it could not parse. A missing file is empty.
func loadLeases(path string, leases map[[6]byte]Lease, now time.Time) (records, skipped int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("dhcp: open lease file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first && strings.HasPrefix(line, "# ") {
			if line+"\n" != leaseHeader {
				return 0, 0, fmt.Errorf("dhcp: lease file %s: unknown format %q", path, line)
			}
			continue
		}
		l, ok := parseRecord(line)
		if !ok {
			skipped++
			continue
		}
		records++
		if l.Expires.IsZero() {
			delete(leases, [6]byte(l.MAC))
		} else {
			leases[[6]byte(l.MAC)] = l
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			// Junk without a newline: keep what was read, the rewrite
			// drops the rest.
			return records, skipped + 1, nil
		}
		return 0, 0, fmt.Errorf("dhcp: read lease file %s: %w", path, err)
	}
	for k, l := range leases {
		if !l.Expires.After(now) {
			delete(leases, k)
		}
	}
	return records, skipped, nil
}

// appendRecord appends the lease file line for l; a zero Expires records
// a release.
func appendRecord(b []byte, l Lease) []byte {
	var exp int64
	if !l.Expires.IsZero() {
		exp = l.Expires.Unix()
	}
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, ' ')
	const hexDigits = "0123456789abcdef"
	for i, c := range l.MAC {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	b = append(b, ' ')
	ip, _ := netip.AddrFromSlice(l.IP.To4())
	b = ip.AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, l.Name)
	return append(b, '\n')
}

// parseRecord parses one lease file line.
func parseRecord(line string) (Lease, bool) {
	f := strings.SplitN(line, " ", 4)
	if len(f) != 4 {
		return Lease{}, false
	}
	exp, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || exp < 0 {
		return Lease{}, false
	}
	mac, err := net.ParseMAC(f[1])
	if err != nil || len(mac) != 6 {
		return Lease{}, false
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil || !ip.Is4() {
		return Lease{}, false
	}
	name, err := strconv.Unquote(f[3])
	if err != nil {
		return Lease{}, false
	}
	l := Lease{MAC: mac, IP: net.IP(ip.AsSlice()), Name: name}
	if exp != 0 {
		l.Expires = time.Unix(exp, 0)
	}
	return l, true
}

// queue adds l's record to the next batch and msg (if not nil) to the
// replies sent after that batch's fsync. The caller holds st.mu.
func (st *leaseStore) queue(l Lease, msg []byte, to netip.AddrPort) {
	if st.closed {
		return
	}
	st.buf = appendRecord(st.buf, l)
	if msg != nil {
		st.acks = append(st.acks, packet{msg: msg, to: to})
	}
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// writer is the group-commit loop: each round takes every record queued
// so far, writes and fsyncs them (or rewrites the file when it has grown
// to more than twice the live leases), then sends the waiting replies.
// Records queued while it syncs, or less than minSyncGap after the last
// round started, form the next round.
func (st *leaseStore) writer() {
	defer close(st.done)
	var last time.Time
	for {
		stopping := false
		select {
		case <-st.kick:
		case <-st.stop:
			stopping = true
		}
		if wait := minSyncGap - time.Since(last); wait > 0 && !stopping {
			// Let more records join this group.
			select {
			case <-time.After(wait):
			case <-st.stop:
				stopping = true
			}
		}
		last = time.Now()
		st.mu.Lock()
		buf, acks := st.buf, st.acks
		st.buf, st.acks = st.spare[:0], st.spareAk[:0]
		n := bytes.Count(buf, []byte{'\n'})
		var snap []Lease
		if st.records+n > 2*len(st.leases)+4096 {
			snap = st.snapshot()
		}
		st.mu.Unlock()

		var err error
		switch {
		case snap != nil:
			// The snapshot already holds everything in buf.
			err = st.rewrite(snap)
		case len(buf) > 0:
			err = st.append(buf, n)
		}
		st.report(err)
		if len(acks) > 0 {
			st.deliver(acks)
			clear(acks)
		}

		st.mu.Lock()
		st.spare, st.spareAk = buf[:0], acks[:0]
		st.mu.Unlock()
		if stopping {
			// Nothing is queued after close set st.closed, so this
			// round took everything.
			return
		}
	}
}

// append writes n records and fsyncs them.
func (st *leaseStore) append(buf []byte, n int) error {
	if st.f == nil {
		return errors.New("lease file is not open")
	}
	if _, err := st.f.Write(buf); err != nil {
		return err
	}
	st.records += n
	st.syncs++
	return st.f.Sync()
}

// snapshot returns the live leases. The caller holds st.mu (or is the
// only user of st).
func (st *leaseStore) snapshot() []Lease {
	out := make([]Lease, 0, len(st.leases))
	for _, l := range st.leases {
		out = append(out, l)
	}
	return out
}

// rewrite replaces the lease file with one record per lease, atomically
// (temporary file, fsync, rename, fsync of the folder), and reopens it
// for appending.
func (st *leaseStore) rewrite(leases []Lease) error {
	b := make([]byte, 0, len(leaseHeader)+len(leases)*64)
	b = append(b, leaseHeader...)
	for _, l := range leases {
		b = appendRecord(b, l)
	}
	if err := atomicfile.Write(st.path, b, 0o640); err != nil {
		return fmt.Errorf("dhcp: rewrite lease file: %w", err)
	}
	nf, err := os.OpenFile(st.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("dhcp: reopen lease file: %w", err)
	}
	if st.f != nil {
		st.f.Close()
	}
	st.f, st.records = nf, len(leases)
	return nil
}

// report logs the first write error and the recovery from it.
func (st *leaseStore) report(err error) {
	switch {
	case err != nil && !st.failing:
		st.failing = true
		st.log.Error(err, "failed to write leases; answering anyway", "path", st.path)
	case err == nil && st.failing:
		st.failing = false
		st.log.Info("lease file writable again", "path", st.path)
	}
}

// close writes what is queued, stops the writer and closes the file.
func (st *leaseStore) close() error {
	st.mu.Lock()
	already := st.closed
	st.closed = true
	st.mu.Unlock()
	if already {
		return nil
	}
	close(st.stop)
	<-st.done
	if st.f == nil {
		return nil
	}
	err := st.f.Close()
	st.f = nil
	if err != nil {
		return fmt.Errorf("dhcp: close lease file: %w", err)
	}
	return nil
}
