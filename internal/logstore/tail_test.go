// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package logstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"

	"github.com/google/go-cmp/cmp"
)

const waitTimeout = 20 * time.Second

// waitFor polls cond until it is true, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, waitTimeout, what, cond)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// naiveTail is the reference: the last n lines of s (all when n <= 0).
func naiveTail(s string, n int) string {
	if s == "" {
		return ""
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if n > 0 && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func TestTailMissing(t *testing.T) {
	_, err := Tail(filepath.Join(t.TempDir(), "nope.log"), 10)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Tail of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		content string
		n       int
		want    string
	}{
		{"", 10, ""},
		{"", 0, ""},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 100, "a\nb\nc\n"},
		{"a\nb\nc\n", 0, "a\nb\nc\n"},
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"x", 1, "x"},
		{"\n", 1, "\n"},
		{"\n\n\n", 2, "\n\n"},
		{"a\n\nb\n", 2, "\nb\n"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		writeFile(t, path, tt.content)
		got, err := Tail(path, tt.n)
		if err != nil {
			t.Fatalf("Tail(%q, %d): %v", tt.content, tt.n, err)
		}
		if string(got) != tt.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tt.content, tt.n, got, tt.want)
		}
	}
}

func TestTailLongLinesAcrossBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for iter := range 8 {
		var sb strings.Builder
		for range 1 + r.IntN(12) {
			var l int
			switch r.IntN(3) {
			case 0:
				l = r.IntN(10)
			case 1:
				l = blockSize - 2 + r.IntN(5) // around the block boundary
			default:
				l = r.IntN(3 * blockSize)
			}
			sb.WriteString(strings.Repeat(string(rune('a'+r.IntN(26))), l))
			sb.WriteByte('\n')
		}
		content := sb.String()
		if iter%2 == 1 {
			content += "unterminated"
		}
		path := filepath.Join(dir, fmt.Sprintf("%d.log", iter))
		writeFile(t, path, content)
		for n := -1; n <= 14; n++ {
			got, err := Tail(path, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := naiveTail(content, n); string(got) != want {
				t.Fatalf("iteration %d: Tail(n=%d) returned %d bytes, want %d", iter, n, len(got), len(want))
			}
		}
	}
}

func TestTailSpillsIntoRotatedFile(t *testing.T) {
	tests := []struct {
		name, rotated, current string
		n                      int
		want                   string
	}{
		{"enough in current", "o1\no2\n", "c1\nc2\n", 2, "c1\nc2\n"},
		{"spill", "o1\no2\no3\n", "c1\n", 3, "o2\no3\nc1\n"},
		{"spill all", "o1\no2\n", "c1\n", 10, "o1\no2\nc1\n"},
		{"everything", "o1\no2\n", "c1\nc2", 0, "o1\no2\nc1\nc2"},
		{"empty current", "o1\no2\no3\n", "", 2, "o2\no3\n"},
		{"unterminated rotated", "o1\no2", "c1\n", 2, "o2\nc1\n"},
		{"unterminated rotated, empty current", "o1\no2", "", 5, "o1\no2\n"},
		{"empty rotated", "", "c1\n", 5, "c1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "current.log")
			writeFile(t, path, tt.current)
			writeFile(t, path+".1", tt.rotated)
			writeFile(t, path+".2", "older\n") // never read
			got, err := Tail(path, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Tail(n=%d) mismatch (-want +got):\n%s", tt.n, diff)
			}
		})
	}
}

// syncBuffer is a concurrency-safe writer that counts flushes.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	flushes int
	fail    error
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return 0, b.fail
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushes++
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startFollow runs Follow in the background; the returned function cancels
// it and returns its result.
func startFollow(t *testing.T, path string, n int, w *syncBuffer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, path, n, w) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitTimeout):
			t.Fatal("Follow did not return after cancel")
			return nil
		}
	}
}

func TestFollow(t *testing.T) {
	s := &Store{Root: t.TempDir(), MaxBytes: 4, Keep: 2}
	f, err := s.Open("service", "web")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := s.Path("service", "web")
	write := func(str string) {
		t.Helper()
		if _, err := f.WriteString(str); err != nil {
			t.Fatal(err)
		}
	}
	write("a\nb\nc\n")

	w := &syncBuffer{}
	stop := startFollow(t, path, 2, w)
	waitFor(t, "the tail", func() bool { return w.String() == "b\nc\n" })

	write("d\n")
	waitFor(t, "an appended line", func() bool { return w.String() == "b\nc\nd\n" })

	// Rotation truncates the file; the O_APPEND writer continues at 0.
	if rotated, err := s.Rotate("service", "web"); err != nil || !rotated {
		t.Fatalf("Rotate = %v, %v", rotated, err)
	}
	write("e\n")
	waitFor(t, "a line after truncation", func() bool { return w.String() == "b\nc\nd\ne\n" })

	// Replacement of the file by a new one.
	tmp := filepath.Join(filepath.Dir(path), "new")
	writeFile(t, tmp, "r1\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replacement's content", func() bool { return w.String() == "b\nc\nd\ne\nr1\n" })

	// Removal of the whole log directory, then a new run.
	if err := s.Remove("service", "web"); err != nil {
		t.Fatal(err)
	}
	f2, err := s.Open("service", "web")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if _, err := f2.WriteString("new run\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the recreated file's content", func() bool { return w.String() == "b\nc\nd\ne\nr1\nnew run\n" })

	if err := stop(); err != nil {
		t.Errorf("Follow returned %v after cancel, want nil", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushes == 0 {
		t.Error("Follow never flushed the writer")
	}
}

func TestFollowWithRotatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "current.log")
	writeFile(t, path+".1", "o1\no2\n")
	writeFile(t, path, "c1\n")
	w := &syncBuffer{}
	stop := startFollow(t, path, 2, w)
	waitFor(t, "the tail", func() bool { return w.String() == "o2\nc1\n" })
	appendFile(t, path, "c2\n")
	waitFor(t, "an appended line", func() bool { return w.String() == "o2\nc1\nc2\n" })
	if err := stop(); err != nil {
		t.Error(err)
	}
}

func TestFollowErrors(t *testing.T) {
	dir := t.TempDir()
	err := Follow(context.Background(), filepath.Join(dir, "missing.log"), 10, &syncBuffer{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Follow of a missing file: %v, want fs.ErrNotExist", err)
	}

	path := filepath.Join(dir, "current.log")
	writeFile(t, path, "a\n")
	errBroken := errors.New("broken pipe")
	err = Follow(context.Background(), path, 10, &syncBuffer{fail: errBroken})
	if !errors.Is(err, errBroken) {
		t.Errorf("Follow with a failing writer: %v, want %v", err, errBroken)
	}

	// A bufio.Writer's Flush() error method is used too.
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Follow(ctx, path, 10, bw); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\n" {
		t.Errorf("bufio.Writer not flushed: %q", out.String())
	}
}

func BenchmarkTail100(b *testing.B) {
	path := filepath.Join(b.TempDir(), "current.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	const size = 50 << 20
	for i, written := 0, 0; written < size; i++ {
		n, _ := fmt.Fprintf(bw, "2026-01-02T15:04:05.000000Z INFO request %d served in 12ms status=200 path=/api/v1/items\n", i)
		written += n
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		out, err := Tail(path, 100)
		if err != nil {
			b.Fatal(err)
		}
		if bytes.Count(out, []byte("\n")) != 100 {
			b.Fatalf("got %d lines", bytes.Count(out, []byte("\n")))
		}
	}
}

func TestRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "current.log")
	os.WriteFile(path, []byte("run1 a\nrun1 b\nrun2 a\n"), 0o640)
	for _, tc := range []struct {
		from, to int64
		n        int
		want     string
	}{
		{0, 14, -1, "run1 a\nrun1 b\n"},
		{0, 14, 1, "run1 b\n"},
		{0, 14, 5, "run1 a\nrun1 b\n"},
		{0, 14, 0, ""},
		{14, 21, -1, "run2 a\n"},
	} {
		got, err := Range(path, tc.from, tc.to, tc.n)
		if err != nil || string(got) != tc.want {
			t.Errorf("Range(%d, %d, %d) = %q, %v; want %q", tc.from, tc.to, tc.n, got, err, tc.want)
		}
	}
	if _, err := Range(path, 5, 2, -1); err == nil {
		t.Error("an inverted range gave no error")
	}
}
