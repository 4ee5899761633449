// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultDirIsNotTheSourceTree: run with no flags from the checkout,
// the default ./resources is the store's Go package; the daemon refuses it
// with a clear message instead of treating it as resources (issue 11).
func TestDefaultDirIsNotTheSourceTree(t *testing.T) {
	wd, _ := os.Getwd()
	t.Chdir(filepath.Join(wd, "..", "..")) // the checkout, where ./resources is Go source
	_, err := parseFlags(nil)
	if err == nil || !strings.Contains(err.Error(), "holds Go source") || !strings.Contains(err.Error(), "--dir") {
		t.Errorf("parseFlags() in the checkout: %v", err)
	}
	// Asked for explicitly, it is the user's choice.
	if _, err := parseFlags([]string{"--dir", "./resources"}); err != nil {
		t.Errorf("explicit --dir ./resources: %v", err)
	}
	// A real resource folder by the default name is fine.
	t.Chdir(t.TempDir())
	os.Mkdir("resources", 0o755)
	os.WriteFile(filepath.Join("resources", "p.yaml"), []byte("kind: Process\n"), 0o644)
	if _, err := parseFlags(nil); err != nil {
		t.Errorf("default ./resources with YAML: %v", err)
	}
}
