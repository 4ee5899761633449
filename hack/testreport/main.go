// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command testreport reads `go test -json` on its input and prints what
// `go test` prints (one line per package, and the output of every failed
// test), then how many tests ran, passed, failed and were skipped, with
// the skips grouped by reason, so that a green `make test` says what it
// did not run. It exits 1 if a test or package failed.
//
//	go test -json ./... | go run ./hack/testreport
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of go test -json (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// position is the "file_test.go:123: " prefix of a t.Log line.
var position = regexp.MustCompile(`^\s*[\w./-]+\.go:\d+: `)

func main() {
	counts, skips, failed := report(os.Stdin, os.Stdout)
	total := counts["pass"] + counts["fail"] + counts["skip"]
	fmt.Printf("\n%d tests: %d passed, %d failed, %d skipped\n", total, counts["pass"], counts["fail"], counts["skip"])
	reasons := make([]string, 0, len(skips))
	for r := range skips {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		return len(skips[reasons[i]]) > len(skips[reasons[j]]) || len(skips[reasons[i]]) == len(skips[reasons[j]]) && reasons[i] < reasons[j]
	})
	for _, r := range reasons {
		tests := skips[r]
		fmt.Printf("  skipped %d: %s (%s)\n", len(tests), r, strings.Join(head(tests, 3), ", "))
	}
	if failed {
		os.Exit(1)
	}
}

// report copies the package summaries and failed tests' output from in to
// out and returns the test counts by result, the skipped tests by reason,
// and whether anything failed.
func report(in io.Reader, out io.Writer) (map[string]int, map[string][]string, bool) {
	counts := map[string]int{}
	skips := map[string][]string{}
	failed := false
	outputs := map[string][]string{} // package/test -> its output lines
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			fmt.Fprintln(out, sc.Text()) // not JSON: build errors and such
			continue
		}
		key := ev.Package + " " + ev.Test
		switch {
		case ev.Action == "output" && ev.Test == "":
			// The package's own lines: ok/FAIL/no test files, panics.
			if !strings.HasPrefix(ev.Output, "=== ") && !strings.HasPrefix(ev.Output, "PASS") && strings.TrimSpace(ev.Output) != "FAIL" {
				fmt.Fprint(out, ev.Output)
			}
		case ev.Action == "output":
			outputs[key] = append(outputs[key], ev.Output)
		case ev.Test == "" && ev.Action == "fail":
			failed = true
		case ev.Test != "" && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip"):
			if strings.Contains(ev.Test, "/") {
				delete(outputs, key)
				continue // subtests count with their parent
			}
			counts[ev.Action]++
			switch ev.Action {
			case "fail":
				failed = true
				for _, l := range outputs[key] {
					fmt.Fprint(out, l)
				}
			case "skip":
				r := skipReason(outputs[key])
				skips[r] = append(skips[r], ev.Test)
			}
			delete(outputs, key)
		}
	}
	return counts, skips, failed
}

// skipReason is the message a skipped test gave (its last t.Skip line).
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return position.ReplaceAllString(l, "")
	}
	return "no reason given"
}

func head(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), fmt.Sprintf("and %d more", len(s)-n))
}
