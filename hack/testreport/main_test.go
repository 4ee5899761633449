// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:12: missing peer: foo is not installed\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: want 1, got 2\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"pass","Package":"p","Test":"TestC/sub"}`,
		`{"Action":"pass","Package":"p","Test":"TestC"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}`,
		`{"Action":"fail","Package":"p"}`,
		`# a build error line`,
	}, "\n")
	var out strings.Builder
	counts, skips, failed := report(strings.NewReader(in), &out)
	if counts["pass"] != 1 || counts["fail"] != 1 || counts["skip"] != 1 || !failed {
		t.Errorf("counts %v, failed %v", counts, failed)
	}
	if got := skips["missing peer: foo is not installed"]; len(got) != 1 || got[0] != "TestA" {
		t.Errorf("skips %v", skips)
	}
	for _, want := range []string{"want 1, got 2", "FAIL\tp\t0.1s", "# a build error line"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
