// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package controllers

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/controllers/process/supervise"
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
}

func (p *proc) record() record {
	return record{Name: p.name, Pid: p.pid, Pgid: p.pgid, StartTime: p.startTime, StartedAt: p.startedAt,
		SpecHash: p.specHash, RestartedAt: p.restartedAt, FilesHash: p.filesHash, UsesLogStore: p.usesLogStore,
		Notify: p.notifySock != nil, NotifyAddr: p.notifyAddr, Ready: p.ready, Watchdog: p.watchdog}
}

// saveRecord stores the adoption record of a running program: one append
// to the records log, so starting a program costs the same with 10 or
// 10,000 of them.
func (r *ProcessReconciler) saveRecord(p *proc) { r.records.Put(p.name, p.record()) }

// dropRecord forgets the adoption record of a program that exited.
func (r *ProcessReconciler) dropRecord(name string) { r.records.Delete(name) }

// Adopt takes over the programs a previous daemon left running: those in
// adoption records (checked against pid reuse by start time) and those
// found by their environment marker. Programs whose record says they ran
// but that are gone are treated as exited, so they restart per policy.
// Call it after the store is loaded and before SetupWithEngine.
func (r *ProcessReconciler) Adopt(log logr.Logger) (adopted, gone int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	marked := scanMarked(EnvMarker + "=" + r.instance + "/")
	now := time.Now()
	var recs []record
	r.records.Range(func(_ string, rec record) { recs = append(recs, rec) })
	for _, rec := range recs {
		if rec.Name == "" {
			continue
		}
		p := &proc{name: rec.Name, pid: rec.Pid, pgid: rec.Pgid, startTime: rec.StartTime, startedAt: rec.StartedAt,
			specHash: rec.SpecHash, restartedAt: rec.RestartedAt, filesHash: rec.FilesHash, usesLogStore: rec.UsesLogStore,
			ready: rec.Ready, watchdog: rec.Watchdog, everStarted: true, running: true, lastWatchdog: now, nextProbeAt: now}
		r.initAdopted(p)
		fd, err := supervise.OpenPidFD(rec.Pid, rec.StartTime)
		if err != nil {
			p.pendingExit = &supervise.ExitStatus{Known: false, ExitCode: -1, At: now}
			r.procs[rec.Name] = p
			gone++
			continue
		}
		for i, m := range marked[rec.Name] {
			if m.Pid == rec.Pid {
				marked[rec.Name] = append(marked[rec.Name][:i], marked[rec.Name][i+1:]...)
				break
			}
		}
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
		r.up.WithLabelValues(rec.Name).Set(1)
		adopted++
	}
	// Programs started by a daemon that died before writing the record.
	for name, infos := range marked {
		for _, m := range infos {
			if existing := r.procs[name]; existing != nil && existing.running && existing.pendingExit == nil {
				log.Info("killing duplicate of an adopted program", "name", name, "pid", m.Pid)
				supervise.SignalGroup(m.Pid, syscall.SIGKILL)
				continue
			}
			fd, err := supervise.OpenPidFD(m.Pid, m.StartTime)
			if err != nil {
				continue
			}
			p := &proc{name: name, pid: m.Pid, pgid: m.Pid, startTime: m.StartTime, startedAt: now, everStarted: true,
				running: true, lastWatchdog: now, nextProbeAt: now, ready: true}
			if obj, ok := r.store.Get(v1alpha1.KindProcess, name); ok {
				pr := obj.(*v1alpha1.Process)
				p.specHash = specHashOf(pr)
				p.restartedAt = pr.Annotations[v1alpha1.AnnotationRestartedAt]
				p.filesHash = hashFiles(pr.Spec.RestartOnChange)
				p.usesLogStore = pr.Spec.Stdout == "" || pr.Spec.Stderr == ""
			}
			r.initAdopted(p)
			r.procs[name] = p
			r.watchPid(p, m.Pid, fd)
			r.saveRecord(p)
			adopted++
		}
	}
	return adopted, gone
}

// initAdopted fills in what the status in the file knows about an adopted
// program (restart count, last exit).
func (r *ProcessReconciler) initAdopted(p *proc) {
	if obj, ok := r.store.Get(v1alpha1.KindProcess, p.name); ok {
		st := obj.(*v1alpha1.Process).Status
		p.restarts = st.Restarts
		p.lastExit = st.LastExit
	}
	p.initialized = true
}

// scanMarked finds process-group leaders whose environment has an entry
// starting with prefix, keyed by the rest of the entry (the resource name).
func scanMarked(prefix string) map[string][]supervise.ProcInfo {
	out := map[string][]supervise.ProcInfo{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	want := []byte(prefix)
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + de.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
			continue // a child of a supervised program, not the program
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, want) {
				st, err := supervise.ProcStartTime(pid)
				if err == nil {
					name := string(kv[len(want):])
					out[name] = append(out[name], supervise.ProcInfo{Pid: pid, StartTime: st, Pgid: pid})
				}
				break
			}
		}
	}
	return out
}
