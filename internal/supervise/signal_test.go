// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

func TestSignalNameRoundTrip(t *testing.T) {
	if got := SignalName(0); got != "" {
		t.Errorf("SignalName(0) = %q, want empty", got)
	}
	if got := SignalName(syscall.SIGTERM); got != "SIGTERM" {
		t.Errorf("SignalName(SIGTERM) = %q", got)
	}
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		name := SignalName(sig)
		got, err := v1alpha1.ParseSignalName(name)
		if err != nil || got != sig {
			t.Errorf("ParseSignalName(SignalName(%d) = %q) = %v, %v", int(sig), name, got, err)
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
