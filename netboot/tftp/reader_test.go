// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	r, err := newFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.size != 5000 {
		t.Fatalf("size = %d, want 5000", r.size)
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
	r.pos = 0
	if _, err := io.ReadFull(r, make([]byte, 5000)); !errors.Is(err, errShrank) {
		t.Fatalf("shrunk file: got %v, want errShrank (io.ErrUnexpectedEOF would end the transfer as a short file)", err)
	}
}

// Netascii: LF becomes CR LF, CR becomes CR NUL, whatever the sizes of the
// reads (a pair may be split across two).
func TestNetasciiReader(t *testing.T) {
	in := "a\nb\rc\r\n\n" + string(pattern(3000, 1))
	var want []byte
	for _, c := range []byte(in) {
		switch c {
		case '\n':
			want = append(want, '\r', '\n')
		case '\r':
			want = append(want, '\r', 0)
		default:
			want = append(want, c)
		}
	}
	for _, size := range []int{1, 2, 3, 512, 1468, 10000} {
		r := newNetasciiReader(bytes.NewReader([]byte(in)))
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("reads of %d: %d bytes, want %d", size, len(got), len(want))
		}
	}
}
