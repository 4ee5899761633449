// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
)

// fileReader streams one open file to pin/tftp: each Read is one pread
// straight into pin/tftp's datagram buffer (no copy of our own, nothing
// held in memory). It serves at most the size the file had when it was
// opened, so a file that grows meanwhile still matches the announced
// tsize, and it fails once the server is closing, so that transfers in
// flight end at their next block.
//
// It is an io.Seeker so that pin/tftp announces tsize itself, and only
// where that is right: in octet mode it seeks to learn the size; in
// netascii mode, where the bytes sent differ from the file, it wraps the
// reader and leaves tsize out (as tftpd-hpa does). Calling
// OutgoingTransfer.SetSize instead would announce the file size in
// netascii mode too.
type fileReader struct {
	f       *os.File
	size    int64 // bytes to serve
	pos     int64 // next byte to read
	closing *atomic.Bool
}

func newFileReader(f *os.File, closing *atomic.Bool) (*fileReader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &fileReader{f: f, size: st.Size(), closing: closing}, nil
}

// Read implements io.Reader.
func (r *fileReader) Read(p []byte) (int, error) {
	if r.closing.Load() {
		return 0, errClosing
	}
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

// Seek implements io.Seeker over the served size.
func (r *fileReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.pos = offset
	return offset, nil
}
