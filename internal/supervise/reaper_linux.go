// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// scanEvery is the shortest time between two full scans of the children.
const scanEvery = 20 * time.Millisecond

// ErrReaperClosed is returned by Reaper.Watch after Reaper.Close.
var ErrReaperClosed = errors.New("reaper closed")

// ExitStatus is how a watched process ended.
type ExitStatus struct {
	// Known is false when the process was not our child (it was adopted
	// after a daemon restart): then only the fact of its exit is known.
	Known bool
	// ExitCode is the exit code; valid when Known and Signal == 0, and -1
	// otherwise.
	ExitCode int
	// Signal is non-zero when the process was killed by a signal.
	Signal syscall.Signal
	// CoreDumped reports that the process dumped core when killed.
	CoreDumped bool
	// At is when the reaper noticed the exit.
	At time.Time
}

// String returns a description such as "exit status 1",
// "signal: killed (SIGKILL)" or "exited (status unknown: adopted process)".
func (e ExitStatus) String() string {
	switch {
	case !e.Known:
		return "exited (status unknown: adopted process)"
	case e.Signal != 0:
		s := "signal: " + e.Signal.String() + " (" + SignalName(e.Signal) + ")"
		if e.CoreDumped {
			s += " (core dumped)"
		}
		return s
	default:
		return "exit status " + strconv.Itoa(e.ExitCode)
	}
}

// Success reports whether the process is known to have exited with status 0.
func (e ExitStatus) Success() bool {
	return e.Known && e.Signal == 0 && e.ExitCode == 0
}

// watch is one process being waited for.
type watch struct {
	pid int
	fn  func(ExitStatus)
}

// Reaper waits for many processes at once with one goroutine blocked in
// epoll_wait(2), instead of a goroutine (and, while it is blocked in wait, an
// OS thread) per process.
//
// Our own children (WatchChild) need no descriptor at all: SIGCHLD wakes the
// loop, which asks the kernel which child has exited (waitid(P_ALL) with
// WNOWAIT, so a child that someone else waits for, such as an os/exec
// command, is left alone) and reaps the ones it watches with
// waitid(P_PID, WEXITED|WNOHANG). Holding no pidfd per child matters: every
// fork copies the daemon's descriptor table and every exec walks it to close
// the close-on-exec ones, so 10,000 pidfds would make each start of a
// program cost milliseconds.
//
// Processes that are not our children (adopted after a daemon restart) are
// watched through a pidfd (Watch): when it becomes readable the process has
// exited, and its status is reported with Known == false. Then the pidfd is
// closed and the callback is invoked.
//
// Callbacks run one at a time on the reaper goroutine: they must not block
// (hand the status to a channel with room, or to a queue) and must not call
// Close, which waits for the reaper goroutine and would deadlock. They may call
// Watch, Len and Spawn, for example to restart a program.
//
// The zero value is not usable; create a Reaper with NewReaper. All methods
// are safe for concurrent use.
type Reaper struct {
	epfd int // epoll instance
	evfd int // eventfd used to wake the loop for Close

	mu       sync.Mutex
	closed   bool
	watches  map[int]watch            // by pidfd
	children map[int]func(ExitStatus) // our own children, by pid
	// scanWanted asks the loop for a full scan (a child that exited or was
	// not ours before WatchChild registered it); lastScan rate-limits the
	// scans that someone else's zombie forces.
	scanWanted bool
	lastScan   time.Time
	// expected are children asked to exit (ExpectExit): a SIGCHLD looks at
	// them first, by pid, and the scan of every child is deferred (see
	// deferredScan); scanPending is set while that scan is armed and
	// scanDue once it is due.
	expected    map[int]struct{}
	scanPending bool
	scanDue     bool
	loopErr     error // set by the loop before it exits on an unexpected error

	sigchld chan os.Signal // SIGCHLD notifications, forwarded to evfd
	done    chan struct{}  // closed when the loop goroutine has returned
}

// NewReaper creates a Reaper and starts its goroutine. Call Close to stop it.
func NewReaper() (*Reaper, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := eventfd()
	if err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(evfd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		syscall.Close(evfd)
		syscall.Close(epfd)
		return nil, fmt.Errorf("register eventfd with epoll: %w", err)
	}
	r := &Reaper{
		epfd:     epfd,
		evfd:     evfd,
		watches:  make(map[int]watch),
		children: make(map[int]func(ExitStatus)),
		expected: make(map[int]struct{}),
		sigchld:  make(chan os.Signal, 1),
		done:     make(chan struct{}),
	}
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	go func() {
		for range r.sigchld {
			r.kick()
		}
	}()
	go r.loop()
	return r, nil
}

// WatchChild arranges for fn to be called, on the reaper goroutine, once pid,
// a child of this process started with Spawn, has exited; the reaper reaps
// it. If it has already exited, fn is still called. Nothing else in the
// process may wait for pid.
func (r *Reaper) WatchChild(pid int, fn func(ExitStatus)) error {
	if pid <= 0 {
		return fmt.Errorf("watch child: invalid pid %d", pid)
	}
	if fn == nil {
		return fmt.Errorf("watch child %d: nil callback", pid)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("watch child %d: %w", pid, ErrReaperClosed)
	}
	if _, ok := r.children[pid]; ok {
		r.mu.Unlock()
		return fmt.Errorf("watch child %d: already watched", pid)
	}
	r.children[pid] = fn
	r.mu.Unlock()
	// Its SIGCHLD may have come before it was registered: look once.
	var info siginfo
	if err := waitid(pPid, pid, &info, syscall.WEXITED|syscall.WNOHANG|syscall.WNOWAIT); err != nil || info.pid != 0 {
		// Exited already, or not our child at all (ECHILD): a scan
		// reports either.
		r.mu.Lock()
		r.scanWanted = true
		r.mu.Unlock()
		r.kick()
	}
	return nil
}

// Expected exits (see ExpectExit).
const (
	// maxExpected bounds the expected children looked at by pid on one
	// SIGCHLD; beyond it (a mass stop) the scan is cheaper.
	maxExpected = 32
	// deferredScan is how long after reaping expected exits the reaper
	// looks at every child, for an unexpected exit whose SIGCHLD merged
	// with theirs.
	deferredScan = 10 * time.Millisecond
)

// ExpectExit tells the reaper that pid, a watched child, has been asked to
// exit (it was sent its stop signal). Its SIGCHLD is then answered by
// looking at pid alone, and the scan of every child is done a little later
// (deferredScan), once for a burst: asking the kernel which child exited
// walks the list of every child (waitid(P_ALL)), which costs milliseconds
// with 10,000 programs, while waitid(P_PID) costs the same for any number.
// An unknown pid is ignored.
func (r *Reaper) ExpectExit(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.children[pid]; ok {
		r.expected[pid] = struct{}{}
	}
}

// reapExpected reaps and reports the expected children that have exited.
// It returns how many, and false when the reaper has been closed.
func (r *Reaper) reapExpected(pids []int) (int, bool) {
	n := 0
	for _, pid := range pids {
		var info siginfo
		err := waitid(pPid, pid, &info, syscall.WEXITED|syscall.WNOHANG|syscall.WNOWAIT)
		if err == nil && info.pid == 0 {
			continue // still running
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return n, false
		}
		fn := r.children[pid]
		delete(r.children, pid)
		delete(r.expected, pid)
		r.mu.Unlock()
		if err != nil || fn == nil {
			continue // ECHILD: someone else reaped it; the scan reports it
		}
		info = siginfo{}
		if err := waitid(pPid, pid, &info, syscall.WEXITED|syscall.WNOHANG); err != nil || info.pid == 0 {
			fn(ExitStatus{ExitCode: -1, At: time.Now()}) // reaped by someone else
		} else {
			fn(exitStatus(&info))
		}
		n++
	}
	return n, true
}

// deferScan arms the scan of every child after deferredScan, unless it is
// armed already.
func (r *Reaper) deferScan() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scanPending {
		return
	}
	r.scanPending = true
	time.AfterFunc(deferredScan, func() {
		r.mu.Lock()
		r.scanPending, r.scanDue = false, true
		r.mu.Unlock()
		r.kick()
	})
}

// kick wakes the loop to look for exited children. After Close it does
// nothing (the eventfd may be closed and its number reused).
func (r *Reaper) kick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = syscall.Write(r.evfd, one[:]) // EAGAIN: saturated, the loop wakes anyway
}

// Watch arranges for fn to be called, on the reaper goroutine, once the
// process pid, referred to by pidfd, has exited. If it has already exited, fn
// is still called. Watch takes ownership of pidfd: the reaper closes it after
// the exit (or on Close), and Watch closes it itself when it returns an error,
// except when pidfd is already being watched (that watch keeps it).
//
// pid must be the process pidfd refers to; it is used only for error messages.
func (r *Reaper) Watch(pid, pidfd int, fn func(ExitStatus)) error {
	if pidfd < 0 {
		return fmt.Errorf("watch pid %d: invalid pidfd %d", pid, pidfd)
	}
	if fn == nil {
		syscall.Close(pidfd)
		return fmt.Errorf("watch pid %d: nil callback", pid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		syscall.Close(pidfd)
		return fmt.Errorf("watch pid %d: %w", pid, ErrReaperClosed)
	}
	if w, ok := r.watches[pidfd]; ok {
		return fmt.Errorf("watch pid %d: pidfd %d already watched for pid %d", pid, pidfd, w.pid)
	}
	// Record the watch before registering the descriptor, so the loop finds
	// it as soon as it can see an event; both happen under r.mu so that Close
	// never closes the epoll descriptor under a concurrent EpollCtl.
	r.watches[pidfd] = watch{pid: pid, fn: fn}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pidfd)}
	if err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, pidfd, &ev); err != nil {
		delete(r.watches, pidfd)
		syscall.Close(pidfd)
		return fmt.Errorf("watch pid %d: register pidfd with epoll: %w", pid, err)
	}
	return nil
}

// Len returns the number of processes being watched.
func (r *Reaper) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watches) + len(r.children)
}

// Close stops the reaper goroutine and closes the pidfds of the processes
// still watched, without reaping them (children stay zombies until they are
// waited for, or until this process exits). No callback runs after Close returns;
// a callback already running when Close is called finishes first. Close must
// not be called from a callback. Closing a closed Reaper returns nil.
func (r *Reaper) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	signal.Stop(r.sigchld)
	close(r.sigchld)

	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	var errs []error
	if _, err := syscall.Write(r.evfd, one[:]); err != nil && err != syscall.EAGAIN {
		// EAGAIN means the counter is saturated, so the loop is woken anyway.
		errs = append(errs, fmt.Errorf("wake reaper: %w", err))
	}
	<-r.done

	// The loop has returned and Watch sees r.closed: nothing else uses the
	// descriptors any more.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loopErr != nil {
		errs = append(errs, r.loopErr)
	}
	for fd := range r.watches {
		syscall.Close(fd)
		delete(r.watches, fd)
	}
	clear(r.children)
	if err := syscall.Close(r.evfd); err != nil {
		errs = append(errs, fmt.Errorf("close eventfd: %w", err))
	}
	if err := syscall.Close(r.epfd); err != nil {
		errs = append(errs, fmt.Errorf("close epoll: %w", err))
	}
	return errors.Join(errs...)
}

// loop is the reaper goroutine. It spends its time blocked in epoll_wait: one
// OS thread for all watched processes.
func (r *Reaper) loop() {
	defer close(r.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(r.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			r.mu.Lock()
			r.loopErr = fmt.Errorf("epoll_wait: %w", err)
			r.mu.Unlock()
			return
		}
		for i := range n {
			fd := int(events[i].Fd)
			if fd == r.evfd {
				var buf [8]byte
				_, _ = syscall.Read(r.evfd, buf[:]) // drain; EAGAIN is fine
				r.mu.Lock()
				closed := r.closed
				r.mu.Unlock()
				if closed || !r.reapChildren() {
					return
				}
				continue
			}
			if !r.handle(fd) {
				return
			}
		}
	}
}

// handle processes readiness of pidfd. It returns false when the reaper has
// been closed and the loop must stop without running more callbacks.
func (r *Reaper) handle(pidfd int) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	w, ok := r.watches[pidfd]
	if !ok {
		// Unknown descriptor (cannot happen: descriptors leave the map and
		// epoll together, under r.mu).
		// Deregister so a level-triggered event does not spin the loop.
		_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, pidfd, nil)
		r.mu.Unlock()
		return true
	}
	delete(r.watches, pidfd)
	_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, pidfd, nil)
	r.mu.Unlock()

	st := reap(pidfd)
	syscall.Close(pidfd)
	w.fn(st)
	return true
}

// reapChildren reaps and reports every watched child that has exited. It
// returns false when the reaper has been closed.
func (r *Reaper) reapChildren() bool {
	r.mu.Lock()
	scan := r.scanWanted
	r.scanWanted = false
	due := r.scanDue
	r.scanDue = false
	var expected []int
	if len(r.expected) <= maxExpected {
		for pid := range r.expected {
			expected = append(expected, pid)
		}
	}
	r.mu.Unlock()
	if scan && !r.scanChildren() {
		return false
	}
	if !due && len(expected) > 0 {
		n, ok := r.reapExpected(expected)
		if !ok {
			return false
		}
		if n > 0 {
			// Most likely the signal was theirs: the scan of every
			// child waits a little, and covers a burst once.
			r.deferScan()
			return true
		}
	}
	for {
		// Which child has exited? WNOWAIT leaves it a zombie: it may be
		// someone else's to reap.
		var info siginfo
		if err := waitid(pAll, 0, &info, syscall.WEXITED|syscall.WNOHANG|syscall.WNOWAIT); err != nil || info.pid == 0 {
			return true // ECHILD (no children) or none has exited
		}
		pid := int(info.pid)
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return false
		}
		fn, ok := r.children[pid]
		delete(r.children, pid)
		delete(r.expected, pid)
		r.mu.Unlock()
		if !ok {
			// Someone else's child (an os/exec command) hides the rest
			// until its owner reaps it: ask for each of ours instead, at
			// most every scanEvery, so a zombie that lingers does not
			// cost a scan per exit.
			if wait := scanEvery - time.Since(r.lastScan); wait > 0 {
				time.AfterFunc(wait, r.kick)
				return true
			}
			r.lastScan = time.Now()
			return r.scanChildren()
		}
		info = siginfo{}
		if err := waitid(pPid, pid, &info, syscall.WEXITED|syscall.WNOHANG); err != nil || info.pid == 0 {
			fn(ExitStatus{ExitCode: -1, At: time.Now()}) // reaped by someone else
			continue
		}
		fn(exitStatus(&info))
	}
}

// scanChildren reaps and reports every watched child that has exited, one
// waitid(P_PID) per watched child. It returns false when the reaper has been
// closed.
func (r *Reaper) scanChildren() bool {
	r.mu.Lock()
	pids := make([]int, 0, len(r.children))
	for pid := range r.children {
		pids = append(pids, pid)
	}
	r.mu.Unlock()
	for _, pid := range pids {
		var info siginfo
		if err := waitid(pPid, pid, &info, syscall.WEXITED|syscall.WNOHANG|syscall.WNOWAIT); err == nil && info.pid == 0 {
			continue // still running
		}
		// Forget it before reaping, so a new child that gets the pid
		// right after can be watched.
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return false
		}
		fn := r.children[pid]
		delete(r.children, pid)
		delete(r.expected, pid)
		r.mu.Unlock()
		info = siginfo{}
		err := waitid(pPid, pid, &info, syscall.WEXITED|syscall.WNOHANG)
		if fn == nil {
			continue
		}
		if err != nil {
			info = siginfo{} // ECHILD: not our child; the exit is all that is known
		}
		fn(exitStatus(&info))
	}
	return true
}

// reap collects the exit status of the exited process behind pidfd, reaping
// it when it is our child.
func reap(pidfd int) ExitStatus {
	var info siginfo
	if err := waitid(pPidfd, pidfd, &info, syscall.WEXITED|syscall.WNOHANG); err != nil {
		// ECHILD: not our child (adopted), or already reaped by someone
		// else; the exit is all that is known.
		return ExitStatus{ExitCode: -1, At: time.Now()}
	}
	return exitStatus(&info)
}

// exitStatus decodes what waitid reported for an exited child. A zero signo
// (nothing was reported) gives an unknown status.
func exitStatus(info *siginfo) ExitStatus {
	st := ExitStatus{ExitCode: -1, At: time.Now()}
	if info.signo == 0 {
		return st
	}
	st.Known = true
	switch info.code() {
	case cldExited:
		st.ExitCode = int(info.status)
	case cldKilled:
		st.Signal = syscall.Signal(info.status)
	case cldDumped:
		st.Signal = syscall.Signal(info.status)
		st.CoreDumped = true
	default:
		st.Known = false
	}
	return st
}
