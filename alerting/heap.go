// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package alerting

import (
	"container/heap"
	"time"
)

// timed is an element of a timerHeap: it knows when it is due and where it
// sits in the heap (-1 when it is not in one).
type timed interface {
	dueAt() time.Time
	heapIndex() *int
}

// timerHeap is an indexed min-heap by due time, so that the one timer
// goroutine finds the earliest group or outbox entry in O(1) and updates
// one in O(log n).
type timerHeap[T timed] struct{ items []T }

func (h *timerHeap[T]) Len() int           { return len(h.items) }
func (h *timerHeap[T]) Less(i, j int) bool { return h.items[i].dueAt().Before(h.items[j].dueAt()) }

func (h *timerHeap[T]) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.items[i].heapIndex() = i
	*h.items[j].heapIndex() = j
}

// Push implements heap.Interface; use set.
func (h *timerHeap[T]) Push(x any) {
	t := x.(T)
	*t.heapIndex() = len(h.items)
	h.items = append(h.items, t)
}

// Pop implements heap.Interface; use pop.
func (h *timerHeap[T]) Pop() any {
	n := len(h.items) - 1
	t := h.items[n]
	var zero T
	h.items[n] = zero
	h.items = h.items[:n]
	*t.heapIndex() = -1
	return t
}

// set adds t or moves it after its due time changed.
func (h *timerHeap[T]) set(t T) {
	if i := *t.heapIndex(); i >= 0 {
		heap.Fix(h, i)
		return
	}
	heap.Push(h, t)
}

// remove takes t out of the heap when it is in it.
func (h *timerHeap[T]) remove(t T) {
	if i := *t.heapIndex(); i >= 0 {
		heap.Remove(h, i)
	}
}

// peek returns the earliest element.
func (h *timerHeap[T]) peek() (T, bool) {
	if len(h.items) == 0 {
		var zero T
		return zero, false
	}
	return h.items[0], true
}

// pop removes and returns the earliest element.
func (h *timerHeap[T]) pop() T { return heap.Pop(h).(T) }
