// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"testing"
	"unsafe"
)

func TestSiginfoLayout(t *testing.T) {
	var info siginfo
	if got := unsafe.Sizeof(info); got != 128 {
		t.Errorf("siginfo is %d bytes, want 128", got)
	}
	// The SIGCHLD fields follow the three ints of the common part, aligned
	// to the pointer size.
	wantPid := (3*4 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	if got := unsafe.Offsetof(info.pid); got != wantPid {
		t.Errorf("si_pid at offset %d, want %d", got, wantPid)
	}
	if got := unsafe.Offsetof(info.status); got != wantPid+8 {
		t.Errorf("si_status at offset %d, want %d", got, wantPid+8)
	}
}
