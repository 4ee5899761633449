// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package process

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/envfile"
	"github.com/reconciled/reconciled/internal/regularfile"
	"github.com/reconciled/reconciled/internal/sdnotify"
	"github.com/reconciled/reconciled/internal/sockets"
	"github.com/reconciled/reconciled/internal/supervise"
)

// proc is the supervisor's memory of one Process. Its fields are guarded
// by mu; the engine never reconciles one name twice at once, so mu is only
// contended by event callbacks (exit, sd_notify, probes).
type proc struct {
	mu          sync.Mutex
	deleted     bool // removed from the map; late callbacks ignore it
	seen        bool // a valid resource was seen since the daemon started
	name        string
	initialized bool

	// the current (or last) run
	running      bool
	pid, pgid    int
	startTime    uint64
	startedAt    time.Time
	specHash     string // spec the run was started with (or, after a failed start, tried with)
	restartedAt  string // annotation value the run was started with
	filesHash    string // restartOnChange content the run was started with
	filesDirty   bool
	usesLogStore bool
	// runStart and prevRunStart are where the current and the previous run
	// began in the log store file (prevRunStart -1: unknown, e.g. rotated
	// since or before the daemon started); for logs --previous.
	runStart, prevRunStart int64
	everStarted            bool
	restarts               int64
	pendingExit            *supervise.ExitStatus

	// stop settings of the current run (the resource may be gone when it
	// has to be stopped)
	stopSignal  string
	stopTimeout time.Duration

	// stopping
	stopping         bool
	stopReason       string
	killAt           time.Time
	killed           bool
	restartAfterStop bool
	restartRequested bool

	// after an exit
	lastExit    *v1alpha1.ExitInfo
	streak      int
	nextStartAt time.Time
	done        bool // finished for good per restartPolicy
	succeeded   bool
	startErr    string
	startReason string // ReasonStartFailed or ReasonSocketBindFailed

	// sockets are held for the program (spec.sockets, in order; nil where
	// binding failed) from its first start until it is deleted or done.
	sockets []*sockets.Socket

	// duplicates are other process groups running this program (found at
	// adoption), while they live.
	duplicates []int

	// readiness
	ready        bool
	readyReason  string
	notifySock   *sdnotify.Socket
	notifyAddr   string
	notifyMsg    string
	lastWatchdog time.Time
	watchdog     time.Duration
	probing      bool
	probeSeq     uint64 // identifies the probe in flight; stale results are dropped
	nextProbeAt  time.Time
}

// specUnknown marks a finished run whose spec the daemon did not record.
const specUnknown = "?"

// initFromStatus carries counters over from the status the daemon wrote
// before it restarted.
func (p *proc) initFromStatus(st *v1alpha1.ProcessStatus) {
	p.initialized = true
	p.restarts = st.Restarts
	p.everStarted = st.StartedAt != nil
	p.lastExit = st.LastExit
	switch st.Phase {
	case v1alpha1.ProcessCompleted, v1alpha1.ProcessFailed:
		if !p.running && p.specHash == "" {
			// Finished before the restart: stay finished for the same spec.
			p.done = true
			p.succeeded = st.Phase == v1alpha1.ProcessCompleted
			p.specHash = specUnknown
		}
	}
}

func (p *proc) watchdogLapsed(now time.Time) bool {
	return p.watchdog > 0 && p.ready && now.Sub(p.lastWatchdog) > p.watchdog
}

// closeSockets closes the sockets held for p; removeFiles also removes
// unix socket files (the Process is gone). Called with p.mu held.
func (r *Reconciler) closeSockets(p *proc, removeFiles bool) {
	if len(p.sockets) > 0 {
		sockets.CloseAll(p.sockets, removeFiles)
		p.sockets = nil
	}
}

// closeNotify closes the run's notify socket in the background: Close
// waits for the socket's handler, which may be waiting for p.mu.
func (p *proc) closeNotify() {
	if s := p.notifySock; s != nil {
		p.notifySock = nil
		go s.Close()
	}
}

// status renders the Process status from what the supervisor knows.
func (p *proc) status(pr *v1alpha1.Process) v1alpha1.ProcessStatus {
	st := v1alpha1.ProcessStatus{CommonStatus: controllers.StatusFor(pr), Restarts: p.restarts, LastExit: p.lastExit, Message: p.notifyMsg}
	if !p.startedAt.IsZero() {
		t := metav1.NewTime(p.startedAt)
		st.StartedAt = &t
	} else {
		st.StartedAt = pr.Status.StartedAt
	}
	cond := v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: pr.Generation}
	switch {
	case p.running && p.stopping:
		st.Phase, cond.Reason, cond.Message = v1alpha1.ProcessStopping, ReasonStopping, p.stopReason
		st.Pid = p.pid
	case p.running && !p.ready && pr.Spec.Readiness != nil:
		st.Phase, cond.Reason, cond.Message = v1alpha1.ProcessStarting, p.readyReasonOr(ReasonStarting), ""
		st.Pid = p.pid
	case p.running:
		st.Phase, cond.Status, cond.Reason = v1alpha1.ProcessRunning, metav1.ConditionTrue, ReasonRunning
		st.Pid = p.pid
	case p.done && p.succeeded:
		st.Phase, cond.Reason = v1alpha1.ProcessCompleted, ReasonCompleted
	case p.done:
		st.Phase, cond.Reason = v1alpha1.ProcessFailed, ReasonFailed
		cond.Message = exitMessage(p.lastExit)
	case !p.nextStartAt.IsZero() || p.startErr != "":
		st.Phase, cond.Reason = v1alpha1.ProcessBackOff, ReasonBackOff
		if p.startErr != "" {
			cond.Reason, cond.Message = p.startReason, p.startErr
		} else {
			cond.Message = exitMessage(p.lastExit)
		}
		t := metav1.NewTime(p.nextStartAt)
		st.NextRestartAt = &t
	default:
		st.Phase, cond.Reason = v1alpha1.ProcessStarting, ReasonStarting
	}
	st.SetCondition(cond)
	for _, s := range p.sockets {
		if s != nil {
			st.Sockets = append(st.Sockets, s.Status())
		}
	}
	if p.duplicates = slices.DeleteFunc(p.duplicates, func(pid int) bool { return !supervise.GroupAlive(pid) }); len(p.duplicates) > 0 {
		st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ProcessConditionDuplicate, Status: metav1.ConditionTrue, Reason: ReasonDuplicate,
			Message: duplicateMessage(p), ObservedGeneration: pr.Generation})
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ProcessConditionDuplicate)
	}
	return st
}

func (p *proc) readyReasonOr(def string) string {
	if p.readyReason != "" {
		return p.readyReason
	}
	return def
}

func exitMessage(e *v1alpha1.ExitInfo) string {
	if e == nil {
		return ""
	}
	var s string
	switch {
	case e.Signal != "":
		s = "killed by " + e.Signal
	case e.ExitCode >= 0:
		s = fmt.Sprintf("exited with status %d", e.ExitCode)
	default:
		s = "exited (status unknown)"
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// start launches the program for pr. Called with p.mu held (never r.mu).
func (r *Reconciler) start(log logr.Logger, p *proc, pr *v1alpha1.Process, specHash, restartedAt string, now time.Time) error {
	spec := &pr.Spec
	env, cred, err := r.environment(pr)
	if err != nil {
		return err
	}
	// Stale files go, and output files open, with the program's user's
	// permissions (as systemd does for ExecStartPre= and
	// StandardOutput=file: of a unit with User=).
	if err := supervise.RemoveFiles(spec.RemoveBeforeStart, cred); err != nil {
		return fmt.Errorf("removeBeforeStart: %w", err)
	}
	opts := supervise.SpawnOptions{Argv: spec.Command, Dir: spec.WorkingDir, Env: env, Credential: cred}
	if spec.Stdout != "" {
		f, err := supervise.OpenOutput(spec.Stdout, cred)
		if err != nil {
			return fmt.Errorf("stdout: %w", err)
		}
		defer f.Close()
		opts.StdoutFile = f
	}
	if spec.Stderr != "" {
		if filepath.Clean(spec.Stderr) == filepath.Clean(spec.Stdout) {
			opts.StderrFile = opts.StdoutFile
		} else {
			f, err := supervise.OpenOutput(spec.Stderr, cred)
			if err != nil {
				return fmt.Errorf("stderr: %w", err)
			}
			defer f.Close()
			opts.StderrFile = f
		}
	}
	p.usesLogStore = spec.Stdout == "" || spec.Stderr == ""
	if p.usesLogStore {
		path, err := r.logs.Prepare(logKind, p.name)
		if err != nil {
			return fmt.Errorf("log store: %w", err)
		}
		p.prevRunStart = -1
		if fi, err := os.Stat(path); err == nil {
			if p.everStarted {
				p.prevRunStart = p.runStart
			}
			p.runStart = fi.Size()
		} else {
			p.runStart = 0
		}
		if opts.StdoutFile == nil {
			opts.Stdout = path
		}
		if opts.StderrFile == nil {
			opts.Stderr = path
		}
	}
	p.closeNotify()
	p.watchdog = 0
	if rd := spec.Readiness; rd != nil && rd.Notify {
		addr := r.notifyAddr(p.name)
		sock, err := r.listenNotify(p.name, addr)
		if err != nil {
			return fmt.Errorf("notify socket: %w", err)
		}
		p.notifySock, p.notifyAddr = sock, addr
		opts.Env = append(opts.Env, "NOTIFY_SOCKET="+sock.Addr())
		if spec.Watchdog != nil {
			p.watchdog = spec.Watchdog.Duration
			opts.Env = append(opts.Env, "WATCHDOG_USEC="+strconv.FormatInt(spec.Watchdog.Microseconds(), 10))
		}
	}
	if len(spec.Sockets) > 0 || len(p.sockets) > 0 {
		if p.sockets, err = sockets.Sync(p.sockets, spec.Sockets); err != nil {
			p.closeNotify()
			return err
		}
		if len(p.sockets) > 0 {
			opts.ExtraFiles = sockets.Files(p.sockets)
			opts.Env = append(opts.Env, sockets.Env(p.sockets)...)
			opts.SetListenPID = true
		}
	}
	filesHash := hashFiles(spec.RestartOnChange)
	r.files.set(p.name, spec.RestartOnChange)
	child, err := supervise.Spawn(opts)
	if err != nil {
		p.closeNotify()
		// The kernel's error does not say whether exec, chdir or setuid
		// failed: name what was asked.
		if spec.WorkingDir != "" || spec.User != "" {
			err = fmt.Errorf("%w (workingDir %q, user %q)", err, spec.WorkingDir, spec.User)
		}
		return err
	}
	if p.everStarted {
		p.restarts++
		r.restartsTotal.WithLabelValues(p.name).Inc()
	}
	p.everStarted = true
	p.running, p.stopping, p.killed = true, false, false
	p.pid, p.pgid, p.startTime = child.Pid, child.Pid, child.StartTime
	p.startedAt = now
	p.specHash, p.restartedAt, p.filesHash, p.filesDirty = specHash, restartedAt, filesHash, false
	p.restartRequested = false
	p.ready, p.readyReason, p.notifyMsg, p.startErr, p.startReason = false, "", "", "", ""
	p.lastWatchdog = now
	p.nextStartAt = time.Time{}
	p.nextProbeAt = now
	p.probing = false
	p.probeSeq++ // a probe of the previous run no longer counts
	p.stopSignal, p.stopTimeout = spec.StopSignal, spec.StopTimeout.Duration
	r.up.WithLabelValues(p.name).Set(1)
	r.restartsTotal.WithLabelValues(p.name) // from 0, so increase() counts the first restart
	r.watchPid(p, child.Pid, -1)
	r.guardLog(p)
	r.saveRecord(p)
	log.V(1).Info("program started", "pid", child.Pid)
	r.opts.Events.Eventf(v1alpha1.KindProcess, p.name, events.TypeNormal, "Started", "pid %d", child.Pid)
	return nil
}

// watchPid hands a process to the reaper: our child when pidfd is -1, else
// an adopted process behind pidfd. The exit is processed in the next
// reconcile. Called with p.mu held (or, in Adopt, before p is shared).
func (r *Reconciler) watchPid(p *proc, pid, pidfd int) {
	name := p.name
	exited := func(st supervise.ExitStatus) {
		if cur := r.lockProc(name); cur != nil {
			if cur.running && cur.pid == pid {
				cur.pendingExit = &st
			}
			cur.mu.Unlock()
		}
		r.enqueue(name)
	}
	var err error
	if pidfd < 0 {
		err = r.reaper.WatchChild(pid, exited)
	} else {
		err = r.reaper.Watch(pid, pidfd, exited)
	}
	if err != nil {
		r.log.Error(err, "cannot watch process", "name", name, "pid", pid)
	}
}

// environment builds the program's environment (systemd-like minimal
// base, then spec.env) and credentials.
func (r *Reconciler) environment(pr *v1alpha1.Process) ([]string, *syscall.Credential, error) {
	home := "/"
	u, _ := user.Current()
	var cred *syscall.Credential
	if pr.Spec.User != "" {
		lu, err := lookupUser(pr.Spec.User)
		if err != nil {
			return nil, nil, err
		}
		if os.Geteuid() != 0 && lu.Uid != strconv.Itoa(os.Geteuid()) {
			return nil, nil, fmt.Errorf("user %q: running as another user needs a root daemon", pr.Spec.User)
		}
		uid, _ := strconv.ParseUint(lu.Uid, 10, 32)
		gid, _ := strconv.ParseUint(lu.Gid, 10, 32)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if gids, err := lu.GroupIds(); err == nil {
			for _, g := range gids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
		u = lu
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if u != nil {
		home = u.HomeDir
		env = append(env, "USER="+u.Username, "LOGNAME="+u.Username)
	}
	env = append(env, "HOME="+home, EnvMarker+"="+r.instance+"/"+pr.Name)
	if lang := os.Getenv("LANG"); lang != "" {
		env = append(env, "LANG="+lang)
	}
	for _, ef := range pr.Spec.EnvFrom {
		vars, err := readEnvFile(ef)
		if err != nil {
			return nil, nil, err
		}
		env = append(env, vars...)
	}
	for k, v := range pr.Spec.Env {
		env = append(env, k+"="+v)
	}
	return env, cred, nil
}

// maxEnvFileBytes bounds an envFrom file.
const maxEnvFileBytes = 1 << 20

// readEnvFile reads one envFrom file; a missing optional file gives
// nothing. Errors name the file and line, never a value.
func readEnvFile(ef v1alpha1.EnvFile) ([]string, error) {
	data, _, err := regularfile.Read(ef.File, maxEnvFileBytes)
	if errors.Is(err, fs.ErrNotExist) && ef.Optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("envFrom: %w", err)
	}
	vars, err := envfile.Parse(ef.File, data)
	if err != nil {
		return nil, fmt.Errorf("envFrom: %w", err)
	}
	return vars, nil
}

func lookupUser(s string) (*user.User, error) {
	if _, err := strconv.Atoi(s); err == nil {
		if u, err := user.LookupId(s); err == nil {
			return u, nil
		}
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", s, err)
	}
	return u, nil
}

// beginStop sends the stop signal to the program's group and returns how
// long to wait before escalating to SIGKILL.
// The settings are those the run was started with: a program started under
// stopSignal SIGINT is stopped with SIGINT even after its resource changed
// or was deleted.
func (r *Reconciler) beginStop(log logr.Logger, p *proc, reason string, now time.Time) time.Duration {
	sig := syscall.SIGTERM
	if s, err := v1alpha1.ParseSignalName(p.stopSignal); err == nil && p.stopSignal != "" {
		sig = s
	}
	timeout := p.stopTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	p.stopping, p.stopReason, p.killed = true, reason, false
	p.killAt = now.Add(timeout)
	// Its exit is then reaped by pid, not by asking which of every child
	// exited (an adopted program, not our child, is watched by pidfd).
	r.reaper.ExpectExit(p.pid)
	if err := supervise.SignalGroup(p.pgid, sig); err != nil {
		log.Error(err, "cannot signal program", "pid", p.pid)
	}
	return timeout
}

// continueStop escalates to SIGKILL once the stop timeout has passed.
func (r *Reconciler) continueStop(log logr.Logger, p *proc, now time.Time) time.Duration {
	if now.Before(p.killAt) {
		return p.killAt.Sub(now)
	}
	if !p.killed {
		log.Info("program did not stop in time; killing its process group", "pid", p.pid)
		supervise.SignalGroup(p.pgid, syscall.SIGKILL)
		p.killed = true
	}
	return time.Second // the reaper's exit event normally comes first
}

// superviseRunning checks readiness and the watchdog of a running program
// and returns when it needs looking at again (0: only on events).
func (r *Reconciler) superviseRunning(log logr.Logger, p *proc, pr *v1alpha1.Process, now time.Time) time.Duration {
	var next time.Duration
	soonest := func(d time.Duration) {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	rd := pr.Spec.Readiness
	switch {
	case rd == nil:
		p.ready = true
	case rd.Notify:
		if p.watchdog > 0 && p.ready {
			soonest(p.lastWatchdog.Add(p.watchdog).Sub(now) + time.Millisecond)
		}
	default:
		if !p.probing && !now.Before(p.nextProbeAt) {
			p.probing = true
			p.probeSeq++
			p.nextProbeAt = now.Add(rd.Period.Duration)
			go r.runProbe(p.name, p.probeSeq, rd)
		}
		if !p.probing {
			soonest(max(p.nextProbeAt.Sub(now), time.Millisecond))
		} // else the probe's result enqueues
	}
	return next
}

// StopAll stops every running program (for --stop-on-exit) and waits until
// they exited or their stop timeouts passed, writing Stopped statuses.
func (r *Reconciler) StopAll(log logr.Logger) {
	procs := r.allProcs()
	now := time.Now()
	deadline := now
	for _, p := range procs {
		p.mu.Lock()
		if p.running {
			if d := r.beginStop(log, p, ReasonStopped, now); now.Add(d).After(deadline) {
				deadline = now.Add(d)
			}
		}
		p.mu.Unlock()
	}
	for {
		alive := 0
		now := time.Now()
		for _, p := range procs {
			p.mu.Lock()
			switch {
			case !p.running:
			case p.pendingExit != nil:
				p.running = false
				p.closeNotify()
				r.dropRecord(p.name)
			default:
				alive++
				if !now.Before(p.killAt) && !p.killed {
					supervise.SignalGroup(p.pgid, syscall.SIGKILL)
					p.killed = true
				}
			}
			p.mu.Unlock()
		}
		if alive == 0 || now.After(deadline.Add(5*time.Second)) {
			break
		}
		time.Sleep(20 * time.Millisecond) // waiting for exits at shutdown; no queue runs now
	}
	for _, p := range procs {
		p.mu.Lock()
		if obj, ok := r.store.Get(v1alpha1.KindProcess, p.name); ok && !p.running {
			st := p.status(obj.(*v1alpha1.Process))
			st.Phase = v1alpha1.ProcessStopped
			st.Pid = 0
			st.NextRestartAt = nil
			st.SetCondition(v1alpha1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonStopped, Message: "stopped with the daemon (--stop-on-exit)", ObservedGeneration: obj.GetObjectMeta().Generation})
			r.store.UpdateStatus(v1alpha1.KindProcess, p.name, st)
		}
		p.mu.Unlock()
	}
}

// Close releases the reaper and notify sockets. Programs keep running.
func (r *Reconciler) Close() {
	for _, p := range r.allProcs() {
		p.mu.Lock()
		s := p.notifySock
		p.notifySock = nil
		// The programs keep their copies of the sockets, and their files.
		sockets.CloseAll(p.sockets, false)
		p.sockets = nil
		p.mu.Unlock()
		if s != nil {
			s.Close()
		}
	}
	r.files.close()
	r.logGuard.Close()
	r.reaper.Close()
	r.records.Close()
}

// notifyAddr returns a fresh abstract socket address for one run: unique
// per run, so a restart never waits for the previous run's socket to close.
func (r *Reconciler) notifyAddr(name string) string {
	var b [4]byte
	crand.Read(b[:])
	return fmt.Sprintf("@reconciled/%s/%s/%s/%x", r.instance, strings.ToLower(v1alpha1.KindProcess), name, b)
}
