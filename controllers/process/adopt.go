// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package process

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/sockets"
	"github.com/reconciled/reconciled/internal/supervise"
	"github.com/reconciled/reconciled/resources"
)

// record is what a restarted daemon needs to adopt a running program. It
// is kept in the adoption records (<state-dir>/processes.json, a kvlog)
// from start to exit.
type record struct {
	Name         string        `json:"name"`
	Pid          int           `json:"pid"`
	Pgid         int           `json:"pgid"`
	StartTime    uint64        `json:"startTime"`
	StartedAt    time.Time     `json:"startedAt"`
	SpecHash     string        `json:"specHash"`
	RestartedAt  string        `json:"restartedAt,omitempty"`
	FilesHash    string        `json:"filesHash,omitempty"`
	UsesLogStore bool          `json:"usesLogStore,omitempty"`
	Notify       bool          `json:"notify,omitempty"`
	NotifyAddr   string        `json:"notifyAddr,omitempty"`
	Ready        bool          `json:"ready,omitempty"`
	Watchdog     time.Duration `json:"watchdog,omitempty"`
	StopSignal   string        `json:"stopSignal,omitempty"`
	StopTimeout  time.Duration `json:"stopTimeout,omitempty"`
	// Sockets are the sockets the program was given (spec.sockets), to
	// take back from it.
	Sockets []sockets.Held `json:"sockets,omitempty"`
	// BootID is the kernel's boot id when the program started: after a
	// reboot the pid (and its process group) belong to someone else.
	BootID string `json:"bootID"`
}

// bootID identifies the current boot (/proc/sys/kernel/random/boot_id),
// read on first use.
var bootID = sync.OnceValue(func() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
})

func (p *proc) record() record {
	return record{Name: p.name, Pid: p.pid, Pgid: p.pgid, StartTime: p.startTime, StartedAt: p.startedAt,
		SpecHash: p.specHash, RestartedAt: p.restartedAt, FilesHash: p.filesHash, UsesLogStore: p.usesLogStore,
		Notify: p.notifySock != nil, NotifyAddr: p.notifyAddr, Ready: p.ready, Watchdog: p.watchdog,
		StopSignal: p.stopSignal, StopTimeout: p.stopTimeout, Sockets: sockets.Record(p.sockets), BootID: bootID()}
}

// saveRecord stores the adoption record of a running program: one append
// to the records log, so starting a program costs the same with 10 or
// 10,000 of them.
func (r *Reconciler) saveRecord(p *proc) { r.records.Put(p.name, p.record()) }

// dropRecord forgets the adoption record of a program that exited.
func (r *Reconciler) dropRecord(name string) { r.records.Delete(name) }

// Adopt takes over the programs a previous daemon left running: those in
// adoption records (checked against pid reuse by boot id and start time)
// and, for names without a record, one found by its environment marker.
// A recorded program that is gone is treated as exited, so it restarts per
// policy; its old process group is never signalled (the pid may belong to
// someone else by now). Nothing is killed on the strength of a marker
// alone: children that a program moved into their own group carry the
// marker too. Call Adopt after the store is loaded and before
// SetupWithEngine.
func (r *Reconciler) Adopt(log logr.Logger) (adopted, gone int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	marked, err := supervise.FindByEnvPrefix(EnvMarker, r.instance+"/")
	if err != nil {
		log.Error(err, "cannot scan for programs started by an earlier daemon")
	}
	allMarked := maps.Clone(marked)
	defer func() { r.findDuplicates(log, allMarked) }()
	now := time.Now()
	var recs []record
	r.records.Range(func(_ string, rec record) { recs = append(recs, rec) })
	for _, rec := range recs {
		if rec.Name == "" {
			continue
		}
		p := &proc{name: rec.Name, pid: rec.Pid, pgid: rec.Pgid, startTime: rec.StartTime, startedAt: rec.StartedAt,
			specHash: rec.SpecHash, restartedAt: rec.RestartedAt, filesHash: rec.FilesHash, usesLogStore: rec.UsesLogStore,
			ready: rec.Ready, watchdog: rec.Watchdog, stopSignal: rec.StopSignal, stopTimeout: rec.StopTimeout,
			everStarted: true, running: true, lastWatchdog: now, nextProbeAt: now}
		r.initAdopted(p)
		fd := -1
		if rec.BootID == bootID() {
			fd, err = supervise.OpenPidFD(rec.Pid, rec.StartTime)
		}
		if fd < 0 || err != nil {
			p.pgid = 0 // not ours any more: never signal that group
			p.pendingExit = &supervise.ExitStatus{Known: false, ExitCode: -1, At: now}
			r.procs[rec.Name] = p
			gone++
			continue
		}
		delete(marked, rec.Name)
		p.sockets = reclaimSockets(log, rec, fd)
		if rec.Notify && rec.NotifyAddr != "" {
			// The program holds this address in NOTIFY_SOCKET: bind it again.
			if sock, err := r.listenNotify(rec.Name, rec.NotifyAddr); err == nil {
				p.notifySock, p.notifyAddr = sock, rec.NotifyAddr
			} else {
				log.Error(err, "cannot reopen notify socket", "name", rec.Name)
			}
		}
		r.procs[rec.Name] = p
		r.watchPid(p, rec.Pid, fd)
		r.guardLog(p)
		r.up.WithLabelValues(rec.Name).Set(1)
		adopted++
	}
	// Programs started by a daemon that died before writing the record:
	// the oldest marked group leader of a name is the program.
	for name, infos := range marked {
		var leaders []supervise.ProcInfo
		for _, m := range infos {
			if m.Pid == m.Pgid {
				leaders = append(leaders, m)
			}
		}
		if len(leaders) == 0 || r.procs[name] != nil {
			continue
		}
		slices.SortFunc(leaders, func(a, b supervise.ProcInfo) int { return cmp.Compare(a.StartTime, b.StartTime) })
		m := leaders[0]
		if len(leaders) > 1 {
			log.Info("several marked process groups for one program; adopting the oldest", "name", name, "pid", m.Pid, "others", len(leaders)-1)
		}
		fd, err := supervise.OpenPidFD(m.Pid, m.StartTime)
		if err != nil {
			continue
		}
		p := &proc{name: name, pid: m.Pid, pgid: m.Pid, startTime: m.StartTime, startedAt: now, everStarted: true,
			running: true, lastWatchdog: now, nextProbeAt: now, ready: true}
		if obj, ok := r.store.Get(v1alpha1.KindProcess, name); ok {
			pr := obj.(*v1alpha1.Process)
			p.specHash = resources.SpecHash(pr)
			p.restartedAt = pr.Annotations[v1alpha1.AnnotationRestartedAt]
			p.filesHash = hashFiles(pr.Spec.RestartOnChange)
			p.usesLogStore = pr.Spec.Stdout == "" || pr.Spec.Stderr == ""
			p.stopSignal, p.stopTimeout = pr.Spec.StopSignal, pr.Spec.StopTimeout.Duration
		}
		r.initAdopted(p)
		r.procs[name] = p
		r.watchPid(p, m.Pid, fd)
		r.guardLog(p)
		r.saveRecord(p)
		adopted++
	}
	return adopted, gone
}

// reclaimSockets takes back the sockets an adopted program was given, from
// the program itself (pidfd_getfd), so that they stay bound across its
// next restart exactly as if the daemon had never restarted. A socket the
// program no longer holds is bound again at its next start.
func reclaimSockets(log logr.Logger, rec record, pidfd int) []*sockets.Socket {
	if len(rec.Sockets) == 0 {
		return nil
	}
	var out []*sockets.Socket
	for _, h := range rec.Sockets {
		s, err := sockets.Reclaim(h, rec.Pid, func(fd int) (*os.File, error) { return supervise.CopyFD(pidfd, fd) })
		if err != nil {
			log.Error(err, "cannot take back a socket from the adopted program; it is bound again at the next start", "name", rec.Name, "pid", rec.Pid, "listen", h.Spec.Listen)
			continue
		}
		out = append(out, s)
	}
	return out
}

// findDuplicates reports, for each adopted program, the process groups
// that carry its marker but are not its own (not descendants of it): a copy
// an earlier daemon started and lost track of. They are not killed: a
// program's own child that moved to its own group and outlived its parent
// looks the same. They are reported loudly instead: an error in the log, a
// Warning event, and the Duplicate condition (and ProcessDuplicate alert)
// until they are gone. Called with r.mu held, after adoption.
func (r *Reconciler) findDuplicates(log logr.Logger, marked map[string][]supervise.ProcInfo) {
	for name, infos := range marked {
		p := r.procs[name]
		if p == nil || !p.running || p.pendingExit != nil {
			continue
		}
		var dups []int
		for _, m := range infos {
			if m.Pid == m.Pgid && m.Pid != p.pid && !supervise.IsDescendant(m.Pid, p.pid) {
				dups = append(dups, m.Pid)
			}
		}
		if len(dups) == 0 {
			continue
		}
		slices.Sort(dups)
		p.duplicates = dups
		log.Error(nil, "other process groups run this program besides the adopted one; they are left running", "name", name, "pid", p.pid, "duplicates", dups)
		r.opts.Events.Eventf(v1alpha1.KindProcess, name, events.TypeWarning, ReasonDuplicate, "%s", duplicateMessage(p))
	}
}

// duplicateMessage says which process groups duplicate p.
func duplicateMessage(p *proc) string {
	return fmt.Sprintf("process groups %v run this program too (started by an earlier daemon, not children of pid %d); they are left running: stop them if they should not (kill -TERM -PGID)", p.duplicates, p.pid)
}

// initAdopted fills in what the status in the file knows about an adopted
// program (restart count, last exit).
func (r *Reconciler) initAdopted(p *proc) {
	p.runStart, p.prevRunStart = -1, -1 // where its run began in the log is not known
	if obj, ok := r.store.Get(v1alpha1.KindProcess, p.name); ok {
		pr := obj.(*v1alpha1.Process)
		p.restarts = pr.Status.Restarts
		p.lastExit = pr.Status.LastExit
		// Watch its files again, and compare them at the first reconcile:
		// they may have changed while no daemon was watching.
		r.files.set(p.name, pr.Spec.RestartOnChange)
		p.filesDirty = len(pr.Spec.RestartOnChange) > 0
	}
	p.initialized = true
}
