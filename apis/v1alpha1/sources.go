// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import "embed"

// Sources are the files that define the kinds: package openapi reads the
// doc comments of their types and fields, so that the schemas served to
// kubectl explain say what this package says, always current.
//
//go:embed *_types.go meta.go socket.go
var Sources embed.FS
