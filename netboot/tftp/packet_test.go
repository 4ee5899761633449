// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func TestParseRequest(t *testing.T) {
	r, err := parseRequest([]byte("\x00\x01Start4.elf\x00OCTET\x00BlkSize\x001468\x00blksize\x00512\x00windowsize\x0016\x00"))
	if err != nil {
		t.Fatal(err)
	}
	want := &request{op: opRRQ, filename: "Start4.elf", mode: "octet", options: []option{{"blksize", "1468"}, {"windowsize", "16"}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if r, err := parseRequest([]byte("\x00\x01file\x00octet\x00\x00")); err != nil || r.filename != "file" || len(r.options) != 0 {
		t.Errorf("a request padded with a NUL: %+v, %v", r, err)
	}
	for name, pkt := range map[string]string{
		"short":           "\x00",
		"not a request":   "\x00\x04\x00\x01",
		"no terminator":   "\x00\x01file\x00octet",
		"no mode":         "\x00\x01file\x00",
		"empty name":      "\x00\x01\x00octet\x00",
		"unknown mode":    "\x00\x01file\x00binary\x00",
		"option no value": "\x00\x01file\x00octet\x00blksize\x00",
	} {
		if _, err := parseRequest([]byte(pkt)); !errors.Is(err, errMalformed) {
			t.Errorf("%s: got %v, want errMalformed", name, err)
		}
	}
	for v, ok := range map[string]bool{"8": true, "65464": true, "7": false, "65465": false, "012": false, "+12": false, "x": false, "": false} {
		if _, got := optionInt(v, 8, 65464); got != ok {
			t.Errorf("optionInt(%q) ok = %v, want %v", v, got, ok)
		}
	}
}

// FuzzParseRequest checks that any packet is either refused with
// errMalformed or parsed into a request that encodes back to a packet
// parsing the same.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"\x00\x01start4.elf\x00octet\x00",
		"\x00\x01start4.elf\x00octet\x00blksize\x001468\x00tsize\x000\x00windowsize\x0016\x00",
		"\x00\x02upload\x00netascii\x00",
		"\x00\x01a\x00OCTET\x00BLKSIZE\x00512\x00blksize\x001468\x00",
		"\x00\x01\x00octet\x00",
		"\x00\x01noterm\x00octet",
		"\x00\x01a\x00octet\x00odd\x00",
		"\x00\x03\x00\x01data",
		"\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if r.filename == "" || (r.op != opRRQ && r.op != opWRQ) {
			t.Fatalf("accepted %+v", r)
		}
		enc := binary.BigEndian.AppendUint16(nil, r.op)
		enc = append(append(append(append(enc, r.filename...), 0), r.mode...), 0)
		for _, o := range r.options {
			enc = append(append(append(append(enc, o.name...), 0), o.value...), 0)
		}
		r2, err := parseRequest(enc)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip of %+v: %+v, %v", r, r2, err)
		}
	})
}
