// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux && (mips64 || mips64le)

package supervise

// sysPidfdOpen is the pidfd_open(2) system call number for the n64 ABI.
const sysPidfdOpen = 5434

// code returns si_code, which precedes si_errno on MIPS.
func (s *siginfo) code() int32 { return s.f1 }
