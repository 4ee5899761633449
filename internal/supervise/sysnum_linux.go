// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux && !mips && !mipsle && !mips64 && !mips64le

package supervise

// sysPidfdOpen is the pidfd_open(2) system call number, which the frozen
// syscall package does not define. New system calls share one number on
// every architecture except MIPS (and Alpha, which Go does not support).
const sysPidfdOpen = 434

// code returns si_code; it follows si_errno everywhere but on MIPS.
func (s *siginfo) code() int32 { return s.f2 }
