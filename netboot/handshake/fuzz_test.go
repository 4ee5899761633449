// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package handshake

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseProgress: any body is refused or gives a report with a known
// phase, a percent in range and a bounded, printable UTF-8 message.
func FuzzParseProgress(f *testing.F) {
	f.Add([]byte(`{"phase":"installing","percent":40,"message":"copying"}`))
	f.Add([]byte(`{"phase":"installed","percent":100}`))
	f.Add([]byte(`{"phase":"failed","message":"\u0000\n"}`))
	f.Add([]byte(`{"phase":"installing","percent":1e400}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseProgress(body)
		if err != nil {
			return
		}
		if p.Phase != PhaseInstalling && p.Phase != PhaseInstalled && p.Phase != PhaseFailed {
			t.Fatalf("phase %q", p.Phase)
		}
		if p.Percent < 0 || p.Percent > 100 || len(p.Message) > MaxMessage || !utf8.ValidString(p.Message) {
			t.Fatalf("report %+v", p)
		}
		for _, r := range p.Message {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", p.Message)
			}
		}
	})
}
