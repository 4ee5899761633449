// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"strings"
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{in: "SIGTERM", want: syscall.SIGTERM},
		{in: "TERM", want: syscall.SIGTERM},
		{in: "sigterm", want: syscall.SIGTERM},
		{in: "term", want: syscall.SIGTERM},
		{in: "15", want: syscall.SIGTERM},
		{in: "SigKill", want: syscall.SIGKILL},
		{in: "9", want: syscall.SIGKILL},
		{in: "HUP", want: syscall.SIGHUP},
		{in: "SIGUSR1", want: syscall.SIGUSR1},
		{in: "usr2", want: syscall.SIGUSR2},
		{in: "SIGWINCH", want: syscall.SIGWINCH},
		{in: "IOT", want: syscall.SIGABRT},
		{in: "SIGPOLL", want: syscall.SIGIO},
		{in: "64", want: syscall.Signal(64)},
		{in: "", wantErr: true},
		{in: "SIG", wantErr: true},
		{in: "SIGFOO", wantErr: true},
		{in: "FOO", wantErr: true},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "65", wantErr: true},
		{in: "15x", wantErr: true},
		{in: " TERM", wantErr: true},
		{in: "SIGSIGTERM", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSignal(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseSignal(%q) = %v, want error", tt.in, got)
			} else if !strings.Contains(err.Error(), "\""+tt.in+"\"") {
				t.Errorf("ParseSignal(%q) error %q does not name the value", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSignalNameRoundTrip(t *testing.T) {
	if got := SignalName(0); got != "" {
		t.Errorf("SignalName(0) = %q, want empty", got)
	}
	if got := SignalName(syscall.SIGTERM); got != "SIGTERM" {
		t.Errorf("SignalName(SIGTERM) = %q", got)
	}
	for sig := syscall.Signal(1); sig <= maxSignal; sig++ {
		name := SignalName(sig)
		got, err := ParseSignal(name)
		if err != nil || got != sig {
			t.Errorf("ParseSignal(SignalName(%d) = %q) = %v, %v", int(sig), name, got, err)
		}
	}
}

func TestExitStatusString(t *testing.T) {
	tests := []struct {
		st   ExitStatus
		want string
	}{
		{ExitStatus{Known: true}, "exit status 0"},
		{ExitStatus{Known: true, ExitCode: 1}, "exit status 1"},
		{ExitStatus{Known: true, ExitCode: -1, Signal: syscall.SIGKILL}, "signal: killed (SIGKILL)"},
		{ExitStatus{Known: true, ExitCode: -1, Signal: syscall.SIGSEGV, CoreDumped: true}, "signal: segmentation fault (SIGSEGV) (core dumped)"},
		{ExitStatus{ExitCode: -1}, "exited (status unknown: adopted process)"},
	}
	for _, tt := range tests {
		if got := tt.st.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.st, got, tt.want)
		}
	}
	if !(ExitStatus{Known: true}).Success() || (ExitStatus{}).Success() || (ExitStatus{Known: true, ExitCode: 2}).Success() {
		t.Error("Success() is wrong")
	}
}
