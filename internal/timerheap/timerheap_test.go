// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package timerheap

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct{ due, idx int }

func TestHeap(t *testing.T) {
	h := New(func(a, b *item) bool { return a.due < b.due }, func(i *item) *int { return &i.idx })
	var items []*item
	for range 200 {
		it := &item{due: rand.IntN(1000), idx: -1}
		items = append(items, it)
		h.Set(it)
	}
	// Move some, remove some.
	for _, it := range items[:50] {
		it.due = rand.IntN(1000)
		h.Set(it)
	}
	for _, it := range items[50:80] {
		h.Remove(it)
		if it.idx != -1 {
			t.Fatalf("removed item keeps index %d", it.idx)
		}
	}
	h.Remove(items[60]) // not in the heap: nothing
	if h.Len() != 170 {
		t.Fatalf("Len %d", h.Len())
	}
	if first, _ := h.Peek(); first == nil {
		t.Fatal("Peek on a full heap")
	}
	var got []int
	for h.Len() > 0 {
		got = append(got, h.Pop().due)
	}
	if !slices.IsSorted(got) || len(got) != 170 {
		t.Fatalf("popped out of order: %v", got)
	}
	if _, ok := h.Peek(); ok {
		t.Fatal("Peek on an empty heap")
	}
}
