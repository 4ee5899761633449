// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func TestFileReader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := pattern(5000, 4)
	must(t, os.WriteFile(p, data, 0o644))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var closing atomic.Bool
	r, err := newFileReader(f, &closing)
	if err != nil {
		t.Fatal(err)
	}
	// What pin/tftp does for tsize: where am I, how long, back.
	if pos, _ := r.Seek(0, io.SeekCurrent); pos != 0 {
		t.Fatalf("Seek current = %d", pos)
	}
	if end, _ := r.Seek(0, io.SeekEnd); end != 5000 {
		t.Fatalf("Seek end = %d", end)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("negative seek: no error")
	}
	// The file grows after opening: only the size at open is served.
	af, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = af.Write([]byte("appended"))
	af.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; want the original %d", len(got), err, len(data))
	}
	// The file shrinks under a transfer: an error, not a short file.
	must(t, os.Truncate(p, 1000))
	r.Seek(0, io.SeekStart)
	if _, err := io.ReadFull(r, make([]byte, 5000)); !errors.Is(err, errShrank) {
		t.Fatalf("shrunk file: got %v, want errShrank (pin/tftp ends a transfer quietly on io.ErrUnexpectedEOF)", err)
	}
	// Closing server: the next Read fails.
	r.Seek(0, io.SeekStart)
	closing.Store(true)
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, errClosing) {
		t.Fatalf("closing: got %v", err)
	}
}
