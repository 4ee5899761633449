// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build !unix

package receivers

import "os/exec"

// setProcessGroup leaves cmd alone: cancellation kills the process only.
func setProcessGroup(*exec.Cmd) {}
