// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/kvlog"
)

// minSyncGap is the least time between the starts of two fsyncs of the
// lease file: at most 500 fsyncs a second, however many leases. An ACK
// waits at most this long plus one write and fsync.
const minSyncGap = 2 * time.Millisecond

// leaseRecord is a lease as the lease file keeps it, keyed by MAC.
type leaseRecord struct {
	IP      string `json:"ip"`
	Name    string `json:"name,omitempty"`
	Expires int64  `json:"expires"` // Unix seconds
}

// leaseStore commits leases to the lease file (a kvlog: snapshot plus an
// append-only log) from one writer goroutine, with one fsync per batch
// (group commit), and sends the ACKs of a batch after its fsync.
type leaseStore struct {
	kv      *kvlog.Map[leaseRecord]
	log     logr.Logger
	deliver func(pkts []packet)

	// mu is the Server's mutex; it guards the fields below.
	mu      *sync.Mutex
	pending []kvlog.Change[leaseRecord]
	acks    []packet
	closed  bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	failing bool // owned by the writer goroutine
}

// openLeaseStore loads the lease file in dir into leases (dropping expired
// leases) and starts the writer. A corrupt file is set aside (logged): the
// leases are fixed per MAC, so only their expiry times are lost.
func openLeaseStore(dir string, mu *sync.Mutex, leases map[[6]byte]Lease, now time.Time, deliver func([]packet), log logr.Logger) (*leaseStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("dhcp: state dir: %w", err)
	}
	kv, err := kvlog.OpenOrSetAside[leaseRecord](filepath.Join(dir, LeaseFile), func(err error) {
		log.Error(err, "dhcp: lease file was corrupt")
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp: lease file: %w", err)
	}
	var expired []kvlog.Change[leaseRecord]
	kv.Range(func(key string, r leaseRecord) {
		l, ok := r.lease(key)
		if !ok || !l.Expires.After(now) {
			expired = append(expired, kvlog.Change[leaseRecord]{Key: key})
			return
		}
		leases[[6]byte(l.MAC)] = l
	})
	if len(expired) > 0 {
		if err := kv.Apply(expired, false); err != nil {
			log.Error(err, "dhcp: cannot drop expired leases from the lease file")
		}
	}
	st := &leaseStore{kv: kv, log: log, deliver: deliver, mu: mu,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go st.writer()
	return st, nil
}

// lease turns a record back into a Lease; false for one that does not
// parse (written by someone else).
func (r leaseRecord) lease(mac string) (Lease, bool) {
	hw, err := net.ParseMAC(mac)
	ip, ierr := netip.ParseAddr(r.IP)
	if err != nil || len(hw) != 6 || ierr != nil || !ip.Is4() || r.Expires <= 0 {
		return Lease{}, false
	}
	return Lease{MAC: hw, IP: net.IP(ip.AsSlice()), Name: r.Name, Expires: time.Unix(r.Expires, 0)}, true
}

// queue adds l to the next batch (a zero Expires records a release) and
// msg (if not nil) to the replies sent after that batch's fsync. The
// caller holds st.mu.
func (st *leaseStore) queue(l Lease, msg []byte, to netip.AddrPort) {
	if st.closed {
		return
	}
	c := kvlog.Change[leaseRecord]{Key: l.MAC.String()}
	if !l.Expires.IsZero() {
		c.Value = &leaseRecord{IP: l.IP.String(), Name: l.Name, Expires: l.Expires.Unix()}
	}
	st.pending = append(st.pending, c)
	if msg != nil {
		st.acks = append(st.acks, packet{msg: msg, to: to})
	}
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// writer is the group-commit loop: each round takes every lease queued so
// far, appends and fsyncs them, then sends the waiting replies. Leases
// queued while it syncs, or less than minSyncGap after the last round
// started, form the next round.
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
			// Let more leases join this group.
			select {
			case <-time.After(wait):
			case <-st.stop:
				stopping = true
			}
		}
		last = time.Now()
		st.mu.Lock()
		batch, acks := st.pending, st.acks
		st.pending, st.acks = nil, nil
		st.mu.Unlock()

		if len(batch) > 0 {
			st.report(st.kv.Apply(batch, true))
		}
		if len(acks) > 0 {
			st.deliver(acks)
		}
		if stopping {
			// Nothing is queued after close set st.closed, so this
			// round took everything.
			return
		}
	}
}

// syncs returns the fsyncs (batches) so far, for tests and benchmarks.
func (st *leaseStore) syncs() int { return st.kv.Syncs() }

// report logs the first write error and the recovery from it.
func (st *leaseStore) report(err error) {
	switch {
	case err != nil && !st.failing:
		st.failing = true
		st.log.Error(err, "failed to write leases; answering anyway")
	case err == nil && st.failing:
		st.failing = false
		st.log.Info("lease file writable again")
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
	if err := st.kv.Close(); err != nil {
		return fmt.Errorf("dhcp: close lease file: %w", err)
	}
	return nil
}
