// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package v1alpha1 holds the resource kinds of the reconciled.dev/v1alpha1
// API: Process, Link, Module, PiNode and AlertRoute. Each kind has a Spec
// written by users, a Status written only by the daemon, Default to fill in
// the documented defaults, and Validate to reject what cannot be run.
//
// Objects handed out by the store are shared and must be treated as
// immutable: use WithStatus to derive a copy carrying a new status.
package v1alpha1
