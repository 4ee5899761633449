// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RestartPolicy says when a Process that exited is started again.
type RestartPolicy string

// Restart policies.
const (
	RestartAlways    RestartPolicy = "Always"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartNever     RestartPolicy = "Never"
)

// Process phases.
const (
	ProcessStarting  = "Starting"
	ProcessRunning   = "Running"
	ProcessBackOff   = "BackOff"
	ProcessStopping  = "Stopping"
	ProcessStopped   = "Stopped"
	ProcessCompleted = "Completed"
	ProcessFailed    = "Failed"
)

// MinBackoff is the shortest backoff.initial and backoff.max allowed
// (systemd's RestartSec= default is 100ms too).
const MinBackoff = 100 * time.Millisecond

// Process supervises one long-running program.
type Process struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ProcessSpec   `json:"spec"`
	Status     ProcessStatus `json:"status,omitempty"`
}

// ProcessSpec is what the user wants run.
type ProcessSpec struct {
	// Command is the argv; no shell is involved. Required.
	Command []string `json:"command"`
	// WorkingDir is the program's working directory.
	WorkingDir string `json:"workingDir,omitempty"`
	// Env is added to a minimal environment (PATH, HOME, ...). Its values
	// are shown only to callers with the API token (they often hold
	// secrets); better, keep secrets in an EnvFrom file.
	Env map[string]string `json:"env,omitempty"`
	// EnvFrom lists files of NAME=VALUE lines (systemd's EnvironmentFile=,
	// docker's --env-file) read at every start and added before Env, which
	// wins over them. List a file in RestartOnChange too to restart the
	// program when it changes.
	EnvFrom []EnvFile `json:"envFrom,omitempty"`
	// User is a user name or uid to run as; needs a root daemon.
	User string `json:"user,omitempty"`
	// RestartPolicy is Always (default), OnFailure or Never.
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty"`
	// Backoff shapes the delay between restarts after the first, immediate one.
	Backoff *Backoff `json:"backoff,omitempty"`
	// StopSignal is sent to the whole process group to stop it (default SIGTERM).
	StopSignal string `json:"stopSignal,omitempty"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL (default 10s).
	StopTimeout *metav1.Duration `json:"stopTimeout,omitempty"`
	// Stdout is a file the program's standard output is appended to;
	// empty means the daemon's log store.
	Stdout string `json:"stdout,omitempty"`
	// Stderr is like Stdout for standard error; empty means the log store.
	Stderr string `json:"stderr,omitempty"`
	// RemoveBeforeStart lists stale files (sockets, pid files) deleted before every start.
	RemoveBeforeStart []string `json:"removeBeforeStart,omitempty"`
	// RestartOnChange lists files whose content change restarts the program.
	RestartOnChange []string `json:"restartOnChange,omitempty"`
	// Readiness says how to tell that the program is ready.
	Readiness *Readiness `json:"readiness,omitempty"`
	// Watchdog, with readiness.notify, is the longest gap allowed between
	// WATCHDOG=1 pings before the program is restarted.
	Watchdog *metav1.Duration `json:"watchdog,omitempty"`
	// Sockets are bound by the daemon and passed to the program from file
	// descriptor 3 on, in order, with LISTEN_FDS, LISTEN_PID and
	// LISTEN_FDNAMES (systemd's socket activation). The daemon keeps them
	// bound while the program restarts, so clients wait instead of being
	// refused.
	Sockets []Socket `json:"sockets,omitempty"`
}

// Socket is one socket of ProcessSpec.Sockets (systemd's ListenStream=,
// ListenDatagram= and their options).
type Socket struct {
	// Name is passed in LISTEN_FDNAMES (systemd's FileDescriptorName=);
	// default: the Process's name. At most 255 characters, no ':'.
	Name string `json:"name,omitempty"`
	// Listen is tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH. An
	// empty HOST means every address; PORT 0 picks a free port (status
	// shows which).
	Listen string `json:"listen"`
	// Backlog is the length of the queue of connections not yet accepted
	// (tcp and unix; default 4096, capped by net.core.somaxconn).
	Backlog int `json:"backlog,omitempty"`
	// Mode is the octal permission of a unix socket's file (default "0666").
	Mode string `json:"mode,omitempty"`
	// Owner and Group own a unix socket's file (names or numeric ids;
	// default: the daemon's).
	Owner string `json:"owner,omitempty"`
	Group string `json:"group,omitempty"`
}

// SocketStatus is one socket the daemon holds for a Process.
type SocketStatus struct {
	// Name is the socket's name in LISTEN_FDNAMES.
	Name string `json:"name"`
	// Listen is the spec's listen.
	Listen string `json:"listen"`
	// Address is the bound address (the port chosen for PORT 0).
	Address string `json:"address"`
}

// EnvFile is one environment file of EnvFrom.
type EnvFile struct {
	// File is the absolute path of the file.
	File string `json:"file"`
	// Optional makes a missing file no error.
	Optional bool `json:"optional,omitempty"`
}

// Backoff is a jittered exponential restart delay.
type Backoff struct {
	// Initial is the delay before the second restart of a crash streak (default 100ms).
	Initial *metav1.Duration `json:"initial,omitempty"`
	// Max caps the delay (default 1m).
	Max *metav1.Duration `json:"max,omitempty"`
	// ResetAfter: a run at least this long ends the crash streak (default 10m).
	ResetAfter *metav1.Duration `json:"resetAfter,omitempty"`
}

// Readiness holds exactly one readiness check.
type Readiness struct {
	// Notify uses the sd_notify protocol: the program gets NOTIFY_SOCKET and
	// is ready when it sends READY=1.
	Notify bool `json:"notify,omitempty"`
	// TCP is ready when a connection to Address succeeds.
	TCP *TCPCheck `json:"tcp,omitempty"`
	// HTTP is ready when a GET answers with an expected status.
	HTTP *HTTPCheck `json:"http,omitempty"`
	// Exec is ready when the command exits 0.
	Exec *ExecCheck `json:"exec,omitempty"`
	// Period is the time between checks for tcp, http and exec (default 1s).
	Period *metav1.Duration `json:"period,omitempty"`
	// Timeout bounds one check (default 1s).
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// TCPCheck connects to Address (host:port).
type TCPCheck struct {
	Address string `json:"address"`
}

// HTTPCheck fetches URL, optionally over a unix socket.
type HTTPCheck struct {
	URL          string `json:"url"`
	UnixSocket   string `json:"unixSocket,omitempty"`
	ExpectStatus []int  `json:"expectStatus,omitempty"`
}

// ExecCheck runs Command; exit status 0 means success.
type ExecCheck struct {
	Command []string `json:"command"`
}

// ProcessStatus is what the daemon observed.
type ProcessStatus struct {
	CommonStatus `json:",inline"`
	// Pid is the main process id while it runs.
	Pid int `json:"pid,omitempty"`
	// StartedAt is when the current (or last) run started.
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// Restarts counts every start after the first.
	Restarts int64 `json:"restarts,omitempty"`
	// LastExit describes how the previous run ended.
	LastExit *ExitInfo `json:"lastExit,omitempty"`
	// NextRestartAt is set while in BackOff.
	NextRestartAt *metav1.Time `json:"nextRestartAt,omitempty"`
	// Message is the last STATUS= sent over sd_notify, if any.
	Message string `json:"message,omitempty"`
	// Sockets are the sockets the daemon holds for the program, in the
	// order of spec.sockets (fd 3 on).
	Sockets []SocketStatus `json:"sockets,omitempty"`
}

// ExitInfo describes how a run ended.
type ExitInfo struct {
	// ExitCode is the exit status; -1 when unknown (an adopted process).
	ExitCode int `json:"exitCode"`
	// Signal names the signal that killed it ("SIGKILL"), if any.
	Signal string `json:"signal"`
	// Reason says why the daemon ended it, if it did ("WatchdogTimeout", "SpecChanged").
	Reason     string      `json:"reason,omitempty"`
	FinishedAt metav1.Time `json:"finishedAt"`
}

// Default fills in the documented defaults.
func (p *Process) Default() {
	s := &p.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartAlways
	}
	if s.Backoff == nil {
		s.Backoff = &Backoff{}
	}
	defaultDuration(&s.Backoff.Initial, 100*time.Millisecond)
	defaultDuration(&s.Backoff.Max, time.Minute)
	defaultDuration(&s.Backoff.ResetAfter, 10*time.Minute)
	if s.StopSignal == "" {
		s.StopSignal = "SIGTERM"
	}
	defaultDuration(&s.StopTimeout, 10*time.Second)
	for i := range s.Sockets {
		sk := &s.Sockets[i]
		if sk.Name == "" {
			sk.Name = p.Name
		}
		if sk.Backlog == 0 && !strings.HasPrefix(sk.Listen, "udp:") {
			sk.Backlog = DefaultSocketBacklog
		}
		if sk.Mode == "" && strings.HasPrefix(sk.Listen, "unix:") {
			sk.Mode = "0666"
		}
	}
	if r := s.Readiness; r != nil && !r.Notify {
		defaultDuration(&r.Period, time.Second)
		defaultDuration(&r.Timeout, time.Second)
	}
}

// Validate checks a defaulted Process.
func (p *Process) Validate() field.ErrorList {
	errs := validateMeta(&p.TypeMeta, &p.ObjectMeta)
	s := &p.Spec
	sp := field.NewPath("spec")
	errs = append(errs, validateArgv(s.Command, sp.Child("command"))...)
	errs = append(errs, validateAbsPath(s.WorkingDir, sp.Child("workingDir"))...)
	errs = append(errs, validateEnvKeys(s.Env, sp.Child("env"))...)
	for i, ef := range s.EnvFrom {
		if ef.File == "" {
			errs = append(errs, field.Required(sp.Child("envFrom").Index(i).Child("file"), "an absolute path"))
		}
		errs = append(errs, validateAbsPath(ef.File, sp.Child("envFrom").Index(i).Child("file"))...)
	}
	switch s.RestartPolicy {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		errs = append(errs, field.NotSupported(sp.Child("restartPolicy"), s.RestartPolicy, []RestartPolicy{RestartAlways, RestartOnFailure, RestartNever}))
	}
	if b := s.Backoff; b != nil {
		bp := sp.Child("backoff")
		errs = append(errs, validateAtLeast(b.Initial, MinBackoff, bp.Child("initial"), "a program failing at once would be restarted hundreds of times a second")...)
		errs = append(errs, validateAtLeast(b.Max, MinBackoff, bp.Child("max"), "a program failing at once would be restarted hundreds of times a second")...)
		errs = append(errs, validatePositive(b.ResetAfter, bp.Child("resetAfter"))...)
		if b.Initial != nil && b.Max != nil && b.Max.Duration < b.Initial.Duration {
			errs = append(errs, field.Invalid(bp.Child("max"), b.Max.Duration.String(), "must not be less than initial"))
		}
	}
	if _, err := ParseSignalName(s.StopSignal); err != nil {
		errs = append(errs, field.Invalid(sp.Child("stopSignal"), s.StopSignal, err.Error()))
	}
	errs = append(errs, validatePositive(s.StopTimeout, sp.Child("stopTimeout"))...)
	errs = append(errs, validateAbsPath(s.Stdout, sp.Child("stdout"))...)
	errs = append(errs, validateAbsPath(s.Stderr, sp.Child("stderr"))...)
	for i, f := range s.RemoveBeforeStart {
		if f == "" {
			errs = append(errs, field.Required(sp.Child("removeBeforeStart").Index(i), "a path"))
		}
		errs = append(errs, validateAbsPath(f, sp.Child("removeBeforeStart").Index(i))...)
	}
	for i, f := range s.RestartOnChange {
		if f == "" {
			errs = append(errs, field.Required(sp.Child("restartOnChange").Index(i), "a path"))
		}
		errs = append(errs, validateAbsPath(f, sp.Child("restartOnChange").Index(i))...)
	}
	if r := s.Readiness; r != nil {
		rp := sp.Child("readiness")
		errs = append(errs, exactlyOne(rp, map[string]bool{"notify": r.Notify, "tcp": r.TCP != nil, "http": r.HTTP != nil, "exec": r.Exec != nil})...)
		if r.TCP != nil {
			errs = append(errs, validateHostPort(r.TCP.Address, rp.Child("tcp", "address"))...)
		}
		if r.HTTP != nil {
			errs = append(errs, validateURL(r.HTTP.URL, rp.Child("http", "url"), "http", "https")...)
			errs = append(errs, validateAbsPath(r.HTTP.UnixSocket, rp.Child("http", "unixSocket"))...)
			errs = append(errs, validateStatusCodes(r.HTTP.ExpectStatus, rp.Child("http", "expectStatus"))...)
		}
		if r.Exec != nil {
			errs = append(errs, validateArgv(r.Exec.Command, rp.Child("exec", "command"))...)
		}
		errs = append(errs, validatePositive(r.Period, rp.Child("period"))...)
		errs = append(errs, validatePositive(r.Timeout, rp.Child("timeout"))...)
	}
	errs = append(errs, validateSockets(s.Sockets, sp.Child("sockets"))...)
	if s.Watchdog != nil {
		errs = append(errs, validatePositive(s.Watchdog, sp.Child("watchdog"))...)
		if s.Readiness == nil || !s.Readiness.Notify {
			errs = append(errs, field.Invalid(sp.Child("watchdog"), s.Watchdog.Duration.String(), "needs readiness.notify: true (the program pings with WATCHDOG=1 over sd_notify)"))
		}
	}
	return errs
}

// validateStatusCodes requires HTTP status codes in 100-599.
func validateStatusCodes(codes []int, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range codes {
		if c < 100 || c > 599 {
			errs = append(errs, field.Invalid(p.Index(i), c, "must be an HTTP status code (100-599)"))
		}
	}
	return errs
}

// GetTypeMeta implements Object.
func (p *Process) GetTypeMeta() *TypeMeta { return &p.TypeMeta }

// GetObjectMeta implements Object.
func (p *Process) GetObjectMeta() *ObjectMeta { return &p.ObjectMeta }

// GetCommonStatus implements Object.
func (p *Process) GetCommonStatus() *CommonStatus { return &p.Status.CommonStatus }

// GetSpec implements Object.
func (p *Process) GetSpec() any { return &p.Spec }

// GetStatus implements Object.
func (p *Process) GetStatus() any { return &p.Status }

// WithStatus implements Object.
func (p *Process) WithStatus(status any) Object {
	c := *p
	c.Status = status.(ProcessStatus)
	return &c
}

// ProcessConditionDuplicate is True on a Process while other process
// groups run its program (found when the daemon adopts its programs); the
// alert source raises ProcessDuplicate on it.
const ProcessConditionDuplicate = "Duplicate"
