// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/printcolumns"
)

func bgctx() context.Context { return context.Background() }

// absoluteTimes makes table columns show times as RFC 3339 timestamps
// instead of ages (get --absolute-times).
var absoluteTimes bool

// age is a time as tables show it (see absoluteTimes).
func age(t *metav1.Time) string { return printcolumns.Age(t, absoluteTimes) }

// columnsFor returns the columns `get` prints for a kind: the wide ones
// only with -o wide.
func columnsFor(kind string, wide bool) []printcolumns.Column {
	var cols []printcolumns.Column
	for _, c := range printcolumns.For(kind, absoluteTimes) {
		if wide || !c.Wide {
			cols = append(cols, c)
		}
	}
	return cols
}
