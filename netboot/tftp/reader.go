// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"errors"
	"io"
	"os"
)

// fileReader streams one open file to a transfer, one pread per block
// (nothing held in memory). It serves at most the size the file had when
// it was opened, so a file that grows meanwhile still matches the
// announced tsize. (The sender, not the reader, ends a transfer when the
// server closes.)
type fileReader struct {
	f    *os.File
	size int64 // bytes to serve
	pos  int64 // next byte to read
}

func newFileReader(f *os.File) (*fileReader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &fileReader{f: f, size: st.Size()}, nil
}

// Read implements io.Reader.
func (r *fileReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if rem := r.size - r.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := r.f.ReadAt(p, r.pos)
	r.pos += int64(n)
	if n > 0 {
		return n, nil
	}
	if err == nil || err == io.EOF {
		// Not io.ErrUnexpectedEOF: pin/tftp would take that for the
		// end of the file and end the transfer as a success.
		err = errShrank
	}
	return 0, err
}

// errShrank aborts a transfer whose file got shorter than its tsize.
var errShrank = errors.New("file shrank while being sent")

// netasciiReader converts a file to netascii (RFC 764) as it is read: LF
// becomes CR LF and a bare CR becomes CR NUL, as tftpd-hpa sends it.
type netasciiReader struct {
	r       io.Reader
	buf     []byte
	pending byte // the second byte of a pair that did not fit, or 0xff
}

func newNetasciiReader(r io.Reader) *netasciiReader {
	return &netasciiReader{r: r, buf: make([]byte, 4096), pending: 0xff}
}

// Read implements io.Reader.
func (n *netasciiReader) Read(p []byte) (int, error) {
	out := 0
	if n.pending != 0xff && len(p) > 0 {
		p[0], n.pending = n.pending, 0xff
		out = 1
	}
	for out < len(p) {
		// Each input byte becomes at most two: read what surely fits,
		// but at least one byte.
		want := max(1, (len(p)-out)/2)
		k, err := n.r.Read(n.buf[:min(want, len(n.buf))])
		for _, c := range n.buf[:k] {
			var second byte = 0xff
			switch c {
			case '\n':
				c, second = '\r', '\n'
			case '\r':
				second = 0
			}
			p[out] = c
			out++
			if second != 0xff {
				if out < len(p) {
					p[out] = second
					out++
				} else {
					n.pending = second
				}
			}
		}
		if err != nil {
			if out > 0 && err == io.EOF {
				return out, nil
			}
			return out, err
		}
		if k == 0 {
			break
		}
	}
	return out, nil
}
