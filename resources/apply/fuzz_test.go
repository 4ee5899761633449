// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apply

import (
	"bytes"
	"testing"
)

// FuzzNormalize: any body either is refused with an error or becomes one
// document that normalizes to itself (so applying it twice is unchanged).
func FuzzNormalize(f *testing.F) {
	f.Add([]byte(sleeper))
	f.Add([]byte(`{"kind":"Process","metadata":{"name":"a","annotations":{"reconciled.dev/source":"x"}},"status":{}}`))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("---\n---\nkind: Link\n"))
	f.Add([]byte("kind: Process\nmetadata: {generation: 1}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := normalize(body)
		if err != nil {
			return
		}
		again, err := normalize(out)
		if err != nil {
			t.Fatalf("normalized output does not normalize: %v\n%s", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("normalize is not idempotent:\n%s\n---\n%s", out, again)
		}
	})
}
