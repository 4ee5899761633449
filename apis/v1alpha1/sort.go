// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import "sort"

func sortStrings(s []string) { sort.Strings(s) }
