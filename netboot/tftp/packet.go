// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TFTP opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// TFTP error codes (RFC 1350, RFC 2347).
const (
	errCodeUndefined    = 0
	errCodeNotFound     = 1
	errCodeAccess       = 2
	errCodeIllegalOp    = 4
	errCodeOptionRefuse = 8
)

// maxRequest is the largest request packet accepted. RFC 1350 requests fit
// in 512 bytes; options make them longer, but no client needs more.
const maxRequest = 1024

// request is a parsed read or write request.
type request struct {
	op       uint16 // opRRQ or opWRQ
	filename string
	mode     string // lower case: "octet", "netascii" or "mail"
	// options in the order the client sent them, names in lower case;
	// a repeated name keeps its first value.
	options []option
}

// option is one RFC 2347 option.
type option struct{ name, value string }

// option returns the value of the option name and whether it was sent.
func (r *request) option(name string) (string, bool) {
	for _, o := range r.options {
		if o.name == name {
			return o.value, true
		}
	}
	return "", false
}

// errMalformed wraps every reason parseRequest refuses a packet for.
var errMalformed = errors.New("malformed request")

// parseRequest parses a read or write request: opcode, file name, mode and
// options, each string ending in a NUL byte. Any other packet, or one that
// does not follow that form, is refused with an error wrapping
// errMalformed.
func parseRequest(b []byte) (*request, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	if len(b) > maxRequest {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errMalformed, len(b), maxRequest)
	}
	op := binary.BigEndian.Uint16(b)
	if op != opRRQ && op != opWRQ {
		return nil, fmt.Errorf("%w: opcode %d is not a request", errMalformed, op)
	}
	fields, err := splitStrings(b[2:])
	if err != nil {
		return nil, err
	}
	// Some clients pad requests with a NUL byte: an empty string after
	// the mode and the options, where a name without a value would be.
	if len(fields) > 2 && len(fields)%2 == 1 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	if len(fields) < 2 {
		return nil, fmt.Errorf("%w: no mode", errMalformed)
	}
	if len(fields)%2 != 0 {
		return nil, fmt.Errorf("%w: option %q has no value", errMalformed, fields[len(fields)-1])
	}
	r := &request{op: op, filename: fields[0], mode: strings.ToLower(fields[1])}
	if r.filename == "" {
		return nil, fmt.Errorf("%w: empty file name", errMalformed)
	}
	switch r.mode {
	case "octet", "netascii", "mail":
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", errMalformed, fields[1])
	}
	for i := 2; i < len(fields); i += 2 {
		name := strings.ToLower(fields[i])
		if _, dup := r.option(name); !dup {
			r.options = append(r.options, option{name, fields[i+1]})
		}
	}
	return r, nil
}

// splitStrings splits NUL-terminated strings; the last must be terminated
// too.
func splitStrings(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: string not terminated by NUL", errMalformed)
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out, nil
}

// optionInt parses an option value: a decimal number within [lo, hi].
func optionInt(v string, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi || strconv.Itoa(n) != v {
		return 0, false
	}
	return n, true
}

// appendOACK appends an option acknowledgement.
func appendOACK(b []byte, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		b = append(append(append(append(b, o.name...), 0), o.value...), 0)
	}
	return b
}

// appendError appends an ERROR packet.
func appendError(b []byte, code uint16, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	return append(append(b, msg...), 0)
}

// parseAck returns the block number of an ACK packet. ok is false for
// anything else; errMsg is set when the packet is an ERROR.
func parseAck(b []byte) (block uint16, errMsg string, ok bool) {
	if len(b) < 4 {
		return 0, "", false
	}
	switch binary.BigEndian.Uint16(b) {
	case opACK:
		return binary.BigEndian.Uint16(b[2:]), "", true
	case opERROR:
		msg, _, _ := bytes.Cut(b[4:], []byte{0})
		return 0, fmt.Sprintf("error %d from the client: %q", binary.BigEndian.Uint16(b[2:]), msg), false
	}
	return 0, "", false
}
