// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package timerheap is the project's one indexed min-heap of things that
// come due: the alert manager's groups and outbox entries, the probe
// scheduler's entries, the event store's oldest events. Each element knows
// its position, so the earliest is found in O(1) and one element is moved
// or removed in O(log n).
package timerheap

import "container/heap"

// Heap is an indexed min-heap of T ordered by less. index returns the
// element's position field, which the heap keeps (-1 when the element is
// not in the heap); set it to -1 before an element is first added.
type Heap[T any] struct {
	h inner[T]
}

// New returns an empty heap.
func New[T any](less func(a, b T) bool, index func(T) *int) *Heap[T] {
	return &Heap[T]{h: inner[T]{less: less, index: index}}
}

// Len returns the number of elements.
func (h *Heap[T]) Len() int { return len(h.h.items) }

// Set adds t, or moves it after its order changed (its due time, say).
func (h *Heap[T]) Set(t T) {
	if i := *h.h.index(t); i >= 0 {
		heap.Fix(&h.h, i)
		return
	}
	heap.Push(&h.h, t)
}

// Remove takes t out of the heap when it is in it.
func (h *Heap[T]) Remove(t T) {
	if i := *h.h.index(t); i >= 0 {
		heap.Remove(&h.h, i)
	}
}

// Peek returns the earliest element.
func (h *Heap[T]) Peek() (T, bool) {
	if len(h.h.items) == 0 {
		var zero T
		return zero, false
	}
	return h.h.items[0], true
}

// Pop removes and returns the earliest element; the heap must not be empty.
func (h *Heap[T]) Pop() T { return heap.Pop(&h.h).(T) }

// inner implements heap.Interface.
type inner[T any] struct {
	items []T
	less  func(a, b T) bool
	index func(T) *int
}

func (h *inner[T]) Len() int           { return len(h.items) }
func (h *inner[T]) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }

func (h *inner[T]) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.index(h.items[i]) = i
	*h.index(h.items[j]) = j
}

func (h *inner[T]) Push(x any) {
	t := x.(T)
	*h.index(t) = len(h.items)
	h.items = append(h.items, t)
}

func (h *inner[T]) Pop() any {
	n := len(h.items) - 1
	t := h.items[n]
	var zero T
	h.items[n] = zero
	h.items = h.items[:n]
	*h.index(t) = -1
	return t
}
