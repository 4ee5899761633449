// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux && (mips || mipsle)

package supervise

// sysPidfdOpen is the pidfd_open(2) system call number for the o32 ABI.
const sysPidfdOpen = 4434

// code returns si_code, which precedes si_errno on MIPS.
func (s *siginfo) code() int32 { return s.f1 }
