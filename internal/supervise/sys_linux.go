// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"syscall"
	"unsafe"
)

// Thin wrappers for the few system calls that the standard syscall package
// lacks. They are kept here, rather than using golang.org/x/sys/unix, so the
// package has no module dependencies.

const (
	pAll   = 0 // P_ALL idtype for waitid(2): any child
	pPid   = 1 // P_PID idtype for waitid(2): the child with this pid
	pPidfd = 3 // P_PIDFD idtype for waitid(2)

	cldExited = 1 // CLD_EXITED: child called exit(2)
	cldKilled = 2 // CLD_KILLED: child killed by a signal
	cldDumped = 3 // CLD_DUMPED: child killed by a signal and dumped core
)

// is64bit is 1 on 64-bit platforms and 0 elsewhere.
const is64bit = unsafe.Sizeof(uintptr(0)) / 8

// siginfo is the part of the kernel's siginfo_t that waitid(2) fills in for
// SIGCHLD. The signal-specific union is pointer-aligned, hence the padding on
// 64-bit platforms; the whole structure is 128 bytes.
type siginfo struct {
	signo  int32
	f1     int32 // si_errno, or si_code on MIPS
	f2     int32 // si_code, or si_errno on MIPS
	_      [is64bit]int32
	pid    int32
	uid    uint32
	status int32
	_      [128 - (6+is64bit)*4]byte
}

// pidfdOpen wraps pidfd_open(2). The returned descriptor is close-on-exec.
func pidfdOpen(pid int) (int, error) {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// waitid wraps waitid(idtype, id, info, options, NULL), retrying on EINTR.
func waitid(idtype, id int, info *siginfo, options int) error {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, uintptr(idtype), uintptr(id),
			uintptr(unsafe.Pointer(info)), uintptr(options), 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return errno
		}
	}
}

// eventfd wraps eventfd2(0, EFD_CLOEXEC|EFD_NONBLOCK). The EFD_ flags equal the
// O_ flags of the same name on every architecture.
func eventfd() (int, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0,
		uintptr(syscall.O_CLOEXEC|syscall.O_NONBLOCK), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
