// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPathLen is the longest request path CleanPath accepts, in bytes. A
// TFTP request fits in one 516-byte datagram, so real requests are shorter.
const MaxPathLen = 512

// ErrInvalidPath is wrapped by every error CleanPath returns.
var ErrInvalidPath = errors.New("invalid path")

// CleanPath turns the file name of a TFTP read request into a path
// relative to the server root, or refuses it. It only looks at the text;
// symlinks are dealt with when the file is opened (see Server).
//
// Refused, with an error wrapping ErrInvalidPath: the empty name, names
// longer than MaxPathLen, absolute names (leading "/"), any ".." element
// (even one that would stay inside the root, such as "a/../b"),
// backslashes, NUL and other control characters, invalid UTF-8, and names
// that end in "/" or name the root itself. Accepted names are normalised:
// "." elements and repeated slashes are dropped, so "./a//b" becomes
// "a/b". The result is a slash-separated path that fs.ValidPath accepts,
// that is never "." and that CleanPath returns unchanged.
func CleanPath(req string) (string, error) {
	switch {
	case req == "":
		return "", fmt.Errorf("%w: empty", ErrInvalidPath)
	case len(req) > MaxPathLen:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, MaxPathLen)
	case req[0] == '/':
		return "", fmt.Errorf("%w: absolute", ErrInvalidPath)
	case strings.HasSuffix(req, "/"):
		return "", fmt.Errorf("%w: names a directory", ErrInvalidPath)
	case strings.IndexByte(req, '\\') >= 0:
		return "", fmt.Errorf("%w: backslash", ErrInvalidPath)
	case !utf8.ValidString(req):
		return "", fmt.Errorf("%w: not UTF-8", ErrInvalidPath)
	}
	for _, r := range req {
		if unicode.IsControl(r) { // NUL, C0, DEL and C1
			return "", fmt.Errorf("%w: control character %U", ErrInvalidPath, r)
		}
	}
	elems := strings.Split(req, "/")
	out := elems[:0]
	for _, e := range elems {
		switch e {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: parent directory element", ErrInvalidPath)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%w: names the root", ErrInvalidPath)
	}
	return strings.Join(out, "/"), nil
}

// validSerial reports whether serial can be used as one folder name below
// the root.
func validSerial(serial string) bool {
	p, err := CleanPath(serial)
	return err == nil && p == serial && !strings.Contains(p, "/")
}
