// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSwapInIsCompareAndSwap(t *testing.T) {
	tests := map[string]struct {
		onDisk   string // what the target holds at the swap
		wantLost bool
		want     string // target afterwards
	}{
		"unchanged since read":   {onDisk: "base", want: "ours"},
		"edited behind our back": {onDisk: "user edit", wantLost: true, want: "user edit"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "r.yaml")
			tmp := filepath.Join(dir, ".r.yaml.tmp")
			os.WriteFile(target, []byte(tc.onDisk), 0o644)
			os.WriteFile(tmp, []byte("ours"), 0o644)
			lost, err := swapIn(tmp, target, hashBytes([]byte("base")))
			if err != nil {
				t.Fatal(err)
			}
			if lost != tc.wantLost {
				t.Fatalf("lost = %v, want %v", lost, tc.wantLost)
			}
			if b, _ := os.ReadFile(target); string(b) != tc.want {
				t.Fatalf("target holds %q, want %q", b, tc.want)
			}
			if !lost {
				if _, err := os.Stat(tmp); !os.IsNotExist(err) {
					t.Fatal("temp file left behind")
				}
			}
		})
	}
}
