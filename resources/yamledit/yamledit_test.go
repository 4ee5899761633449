// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package yamledit

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lines joins its arguments with "\n" and appends a final "\n".
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

const running = "phase: Running\npid: 42\n"

func TestSetStatus(t *testing.T) {
	tests := map[string]struct {
		src        string
		kind, name string
		generation int64
		status     string
		want       string
	}{
		"replace last status, comments survive": {
			src: lines(
				"# a comment that must survive",
				"apiVersion: reconciled.dev/v1alpha1",
				"kind: Process",
				"metadata:",
				"  name: ticker        # trailing comment survives",
				"  labels: {app: demo}",
				"spec:",
				`  command: ["/bin/sh", "-c", "echo hi"]   # must survive`,
				"status:",
				"  phase: Pending",
				"  # old status comment",
				"---",
				"kind: Link",
				"metadata: {name: a2rtr}",
			),
			kind: "Process", name: "ticker", generation: 3, status: running,
			want: lines(
				"# a comment that must survive",
				"apiVersion: reconciled.dev/v1alpha1",
				"kind: Process",
				"metadata:",
				"  generation: 3",
				"  name: ticker        # trailing comment survives",
				"  labels: {app: demo}",
				"spec:",
				`  command: ["/bin/sh", "-c", "echo hi"]   # must survive`,
				"status:",
				"  phase: Running",
				"  pid: 42",
				"---",
				"kind: Link",
				"metadata: {name: a2rtr}",
			),
		},
		"status first": {
			src:  lines("status:", "  phase: Old", "kind: Process", "metadata:", "  name: ticker", "spec: {}"),
			kind: "Process", name: "ticker", status: running,
			want: lines("status:", "  phase: Running", "  pid: 42", "kind: Process", "metadata:", "  name: ticker", "spec: {}"),
		},
		"status in the middle with trailing blank and column-0 comment lines": {
			src: lines(
				"kind: Process",
				"metadata:",
				"  name: ticker",
				"status:",
				"  phase: Old",
				"  # indented comment belongs to status",
				"",
				"# column-0 comment belongs to the document",
				"",
				"spec:",
				"  x: 1",
			),
			kind: "Process", name: "ticker", status: running,
			want: lines(
				"kind: Process",
				"metadata:",
				"  name: ticker",
				"status:",
				"  phase: Running",
				"  pid: 42",
				"",
				"# column-0 comment belongs to the document",
				"",
				"spec:",
				"  x: 1",
			),
		},
		"column-0 comment inside the status block is replaced": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status:", "  a: 1", "# inside", "  b: 2", "spec: {}"),
			kind: "Process", name: "ticker", status: "phase: X\n",
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: X", "spec: {}"),
		},
		"flow status {}": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status: {}", "spec: {}"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: Running", "  pid: 42", "spec: {}"),
		},
		"flow status with values and comment": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status: {phase: X, pid: 1}  # old"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: Running", "  pid: 42"),
		},
		"multi-line flow status": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status: {phase: X,", "  pid: 1}", "spec: {}"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: Running", "  pid: 42", "spec: {}"),
		},
		"null status": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status:", "spec: {}"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: Running", "  pid: 42", "spec: {}"),
		},
		"tilde status": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status: ~"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: Running", "  pid: 42"),
		},
		"no status: appended before trailing comment block": {
			src: lines(
				"kind: Process",
				"metadata:",
				"  name: ticker",
				"spec:",
				"  x: 1",
				"  # indented comment stays with spec",
				"",
				"# trailing comment",
				"",
			),
			kind: "Process", name: "ticker", status: running,
			want: lines(
				"kind: Process",
				"metadata:",
				"  name: ticker",
				"spec:",
				"  x: 1",
				"  # indented comment stays with spec",
				"status:",
				"  phase: Running",
				"  pid: 42",
				"",
				"# trailing comment",
				"",
			),
		},
		"no status: appended before separator": {
			src:  lines("kind: Process", "metadata: {name: ticker}", "---", "kind: Link", "metadata: {name: l}"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata: {name: ticker}", "status:", "  phase: Running", "  pid: 42", "---", "kind: Link", "metadata: {name: l}"),
		},
		"no status: appended before document end marker": {
			src:  lines("kind: Process", "metadata: {name: ticker}", "", "...", "---", "kind: Link", "metadata: {name: l}"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata: {name: ticker}", "status:", "  phase: Running", "  pid: 42", "", "...", "---", "kind: Link", "metadata: {name: l}"),
		},
		"no status, no final newline": {
			src:  "kind: Process\nmetadata:\n  name: ticker\nspec: {}",
			kind: "Process", name: "ticker", status: running,
			want: "kind: Process\nmetadata:\n  name: ticker\nspec: {}\nstatus:\n  phase: Running\n  pid: 42\n",
		},
		"status last, no final newline": {
			src:  "kind: Process\nmetadata:\n  name: ticker\nstatus:\n  phase: Old",
			kind: "Process", name: "ticker", status: running,
			want: "kind: Process\nmetadata:\n  name: ticker\nstatus:\n  phase: Running\n  pid: 42\n",
		},
		"status argument without final newline": {
			src:  lines("kind: Process", "metadata:", "  name: ticker"),
			kind: "Process", name: "ticker", status: "phase: Running",
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: Running"),
		},
		"status argument with nested values and block scalar": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status: {}"),
			kind: "Process", name: "ticker",
			status: lines("conditions:", "- type: Ready", `  status: "True"`, "message: |", "  line one", "", "  line two"),
			want:   lines("kind: Process", "metadata:", "  name: ticker", "status:", "  conditions:", "  - type: Ready", `    status: "True"`, "  message: |", "    line one", "", "    line two"),
		},
		"status argument with trailing blank lines": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "spec: {}"),
			kind: "Process", name: "ticker", status: "phase: X\n\n  \n",
			want: lines("kind: Process", "metadata:", "  name: ticker", "spec: {}", "status:", "  phase: X"),
		},
		"keep-chomped block scalar in old and new status": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status:", "  msg: |+", "    old", "", ""),
			kind: "Process", name: "ticker", status: "msg: |+\n  new\n\n",
			want: lines("kind: Process", "metadata:", "  name: ticker", "status:", "  msg: |+", "    new", ""),
		},
		"keep-chomped block scalar before appended status": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "spec:", "  script: |+", "    echo", "", "---", "kind: X"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "spec:", "  script: |+", "    echo", "", "status:", "  phase: Running", "  pid: 42", "---", "kind: X"),
		},
		"remove status with nil": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status:", "  phase: X", "", "# keep", "spec: {}"),
			kind: "Process", name: "ticker", status: "",
			want: lines("kind: Process", "metadata:", "  name: ticker", "", "# keep", "spec: {}"),
		},
		"remove status with empty mapping": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "spec: {}", "status: {phase: X}"),
			kind: "Process", name: "ticker", status: "{}\n",
			want: lines("kind: Process", "metadata:", "  name: ticker", "spec: {}"),
		},
		"remove status with comment-only argument": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "status: {phase: X}", "spec: {}"),
			kind: "Process", name: "ticker", status: "# nothing\n",
			want: lines("kind: Process", "metadata:", "  name: ticker", "spec: {}"),
		},
		"remove status at end of file without final newline": {
			src:  "kind: Process\nmetadata:\n  name: ticker\nstatus:\n  phase: X",
			kind: "Process", name: "ticker",
			want: "kind: Process\nmetadata:\n  name: ticker\n",
		},
		"remove absent status leaves document untouched": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "spec: {}  # c"),
			kind: "Process", name: "ticker",
			want: lines("kind: Process", "metadata:", "  name: ticker", "spec: {}  # c"),
		},
		"replace existing generation": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "  generation: 2 # c", "status: {}"),
			kind: "Process", name: "ticker", generation: 15,
			want: lines("kind: Process", "metadata:", "  name: ticker", "  generation: 15 # c"),
		},
		"replace quoted generation": {
			src:  lines("kind: Process", "metadata:", "  generation: \"2\"", "  name: ticker"),
			kind: "Process", name: "ticker", generation: 3,
			want: lines("kind: Process", "metadata:", "  generation: 3", "  name: ticker"),
		},
		"replace single-quoted generation": {
			src:  lines("kind: Process", "metadata:", "  generation: '2'", "  name: ticker"),
			kind: "Process", name: "ticker", generation: 3,
			want: lines("kind: Process", "metadata:", "  generation: 3", "  name: ticker"),
		},
		"insert generation before a commented first key": {
			src:  lines("kind: Process", "metadata:", "    # the name", "    name: ticker", "    labels:", "        a: b"),
			kind: "Process", name: "ticker", generation: 1,
			want: lines("kind: Process", "metadata:", "    # the name", "    generation: 1", "    name: ticker", "    labels:", "        a: b"),
		},
		"insert generation into flow metadata": {
			src:  lines("kind: Link", "metadata: {name: a2rtr}", "spec:", `  tcp: {address: "127.0.0.1:700"}`),
			kind: "Link", name: "a2rtr", generation: 4, status: "up: true\n",
			want: lines("kind: Link", "metadata: {generation: 4, name: a2rtr}", "spec:", `  tcp: {address: "127.0.0.1:700"}`, "status:", "  up: true"),
		},
		"insert generation into multi-line flow metadata": {
			src:  lines("kind: Link", "metadata: {", "  name: a2rtr }"),
			kind: "Link", name: "a2rtr", generation: 4,
			want: lines("kind: Link", "metadata: {", "  generation: 4, name: a2rtr }"),
		},
		"replace generation in flow metadata": {
			src:  lines("kind: Link", "metadata: {name: a2rtr, generation: 9}"),
			kind: "Link", name: "a2rtr", generation: 10,
			want: lines("kind: Link", "metadata: {name: a2rtr, generation: 10}"),
		},
		"generation 0 leaves generation alone": {
			src:  lines("kind: Process", "metadata:", "  name: ticker", "  generation: 2"),
			kind: "Process", name: "ticker", status: running,
			want: lines("kind: Process", "metadata:", "  name: ticker", "  generation: 2", "status:", "  phase: Running", "  pid: 42"),
		},
		"nothing to do returns identical bytes": {
			src:  "# c\nkind: Process\nmetadata: {name: ticker}   \n\n\n",
			kind: "Process", name: "ticker",
			want: "# c\nkind: Process\nmetadata: {name: ticker}   \n\n\n",
		},
		"quoted kind and name": {
			src:  lines("kind: 'Process'", "metadata:", `  name: "ticker"`, "spec: {}"),
			kind: "Process", name: "ticker", generation: 1, status: "phase: X\n",
			want: lines("kind: 'Process'", "metadata:", "  generation: 1", `  name: "ticker"`, "spec: {}", "status:", "  phase: X"),
		},
		"second document of three": {
			src: lines(
				"# file header",
				"kind: Process",
				"metadata: {name: a}",
				"status: {phase: A}",
				"--- # second",
				"kind: Process",
				"metadata: {name: b}",
				"status: {phase: B}",
				"---",
				"kind: Process",
				"metadata: {name: c}",
				"status: {phase: C}",
			),
			kind: "Process", name: "b", status: "phase: X\n",
			want: lines(
				"# file header",
				"kind: Process",
				"metadata: {name: a}",
				"status: {phase: A}",
				"--- # second",
				"kind: Process",
				"metadata: {name: b}",
				"status:",
				"  phase: X",
				"---",
				"kind: Process",
				"metadata: {name: c}",
				"status: {phase: C}",
			),
		},
		"same name, other kind": {
			src:  lines("kind: Link", "metadata: {name: x}", "---", "kind: Process", "metadata: {name: x}"),
			kind: "Process", name: "x", status: "phase: X\n",
			want: lines("kind: Link", "metadata: {name: x}", "---", "kind: Process", "metadata: {name: x}", "status:", "  phase: X"),
		},
		"duplicate document: first is edited": {
			src:  lines("kind: Process", "metadata: {name: x}", "spec: {n: 1}", "---", "kind: Process", "metadata: {name: x}", "spec: {n: 2}"),
			kind: "Process", name: "x", status: "phase: X\n",
			want: lines("kind: Process", "metadata: {name: x}", "spec: {n: 1}", "status:", "  phase: X", "---", "kind: Process", "metadata: {name: x}", "spec: {n: 2}"),
		},
		"empty documents are skipped": {
			src:  lines("---", "# nothing here", "---", "kind: Process", "metadata: {name: x}", "---"),
			kind: "Process", name: "x", status: "phase: X\n",
			want: lines("---", "# nothing here", "---", "kind: Process", "metadata: {name: x}", "status:", "  phase: X", "---"),
		},
		"byte order mark": {
			src:  "\ufeffstatus: {}\nkind: Process\nmetadata: {name: x}\n",
			kind: "Process", name: "x", status: "phase: X\n",
			want: "\ufeffstatus:\n  phase: X\nkind: Process\nmetadata: {name: x}\n",
		},
		"non-ASCII text before keys": {
			src:  lines("kind: Process", "metadata: {ñame: ü, name: x}", "spec: {a: é}"),
			kind: "Process", name: "x", generation: 2, status: "phase: ü\n",
			want: lines("kind: Process", "metadata: {generation: 2, ñame: ü, name: x}", "spec: {a: é}", "status:", "  phase: ü"),
		},
		"CRLF file keeps CRLF": {
			src:  "# windows\r\nkind: Process\r\nmetadata:\r\n  name: x\r\nspec: {a: 1}\r\n",
			kind: "Process", name: "x", generation: 2, status: running,
			want: "# windows\r\nkind: Process\r\nmetadata:\r\n  generation: 2\r\n  name: x\r\nspec: {a: 1}\r\nstatus:\r\n  phase: Running\r\n  pid: 42\r\n",
		},
		"anchors elsewhere in spec are fine": {
			src:  lines("kind: Process", "metadata: {name: x}", "spec:", "  a: &a {x: 1}", "  b: *a"),
			kind: "Process", name: "x", status: "phase: X\n",
			want: lines("kind: Process", "metadata: {name: x}", "spec:", "  a: &a {x: 1}", "  b: *a", "status:", "  phase: X"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var status []byte
			if tc.status != "" {
				status = []byte(tc.status)
			}
			got, err := SetStatus([]byte(tc.src), tc.kind, tc.name, tc.generation, status)
			if err != nil {
				t.Fatalf("SetStatus: %v", err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("SetStatus mismatch (-want +got):\n%s", diff)
			}
			checkSetStatus(t, []byte(tc.src), tc.kind, tc.name, tc.generation, status, got)
		})
	}
}

func TestSetStatusDoesNotAliasInput(t *testing.T) {
	src := []byte("kind: Process\nmetadata: {name: x}\n")
	got, err := SetStatus(src, "Process", "x", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'K'
	if src[0] != 'k' {
		t.Error("SetStatus returned its input slice")
	}
}

func TestSetStatusErrors(t *testing.T) {
	tests := map[string]struct {
		src        string
		kind, name string
		generation int64
		status     string
		wantIs     error  // checked with errors.Is when set
		wantSubstr string // substring of the error message
	}{
		"not found in empty file": {
			src: "", kind: "Process", name: "x", wantIs: ErrNotFound,
		},
		"not found: other name": {
			src: lines("kind: Process", "metadata: {name: y}"), kind: "Process", name: "x", wantIs: ErrNotFound,
		},
		"not found: name is not a string": {
			src: lines("kind: Process", "metadata: {name: 1}"), kind: "Process", name: "1", wantIs: ErrNotFound,
		},
		"not found: name outside metadata": {
			src: lines("kind: Process", "name: x", "metadata: {}"), kind: "Process", name: "x", wantIs: ErrNotFound,
		},
		"mixed line endings": {
			src: "kind: Process\r\nmetadata: {name: x}\n", kind: "Process", name: "x", wantSubstr: `contains \r`,
		},
		"CR in status": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "a: 1\r\n", wantSubstr: `status contains \r`,
		},
		"unicode line separator": {
			src: "kind: Process\nmetadata: {name: x}\nspec: {a: \"\u2028\"}\n", kind: "Process", name: "x", wantSubstr: "U+2028",
		},
		"invalid YAML": {
			src: "kind: Process\nmetadata: {name: x\n", kind: "Process", name: "x", wantSubstr: "parsing input",
		},
		"duplicate keys": {
			src: lines("kind: Process", "metadata: {name: x}", "status: {}", "status: {}"), kind: "Process", name: "x", wantSubstr: "already defined",
		},
		"flow top-level mapping": {
			src: "{kind: Process, metadata: {name: x}}\n", kind: "Process", name: "x", status: running, wantSubstr: "flow style",
		},
		"document is a sequence": {
			src: lines("kind: Process", "metadata: {name: x}", "---", "- a", "- b"), kind: "Process", name: "x", wantSubstr: "document 2 is not a mapping",
		},
		"document is a scalar": {
			src: lines("--- hello", "---", "kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", wantSubstr: "document 1 is not a mapping",
		},
		"indented top-level mapping": {
			src: lines("  kind: Process", "  metadata: {name: x}"), kind: "Process", name: "x", wantSubstr: "column 1",
		},
		"mapping on the document start line": {
			src: lines("--- kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", wantSubstr: "parsing input",
		},
		"anchor on top-level value": {
			src: lines("kind: Process", "metadata: {name: x}", "spec: &s {a: 1}"), kind: "Process", name: "x", wantSubstr: "anchor or alias",
		},
		"anchor on top-level mapping": {
			src: lines("--- &doc", "kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", wantSubstr: "anchor &doc",
		},
		"merge key at top level": {
			src: lines("kind: Process", "<<: {metadata: {name: y}}", "metadata: {name: x}"), kind: "Process", name: "x", wantSubstr: "not a plain key",
		},
		"alias in metadata": {
			src:  lines("kind: Process", "spec:", "  l: &l {a: b}", "metadata:", "  name: x", "  labels: *l"),
			kind: "Process", name: "x", generation: 2, wantSubstr: "metadata uses an alias",
		},
		"merge key in metadata": {
			src:  lines("kind: Process", "spec:", "  l: &l {a: b}", "metadata:", "  <<: *l", "  name: x"),
			kind: "Process", name: "x", generation: 2, wantSubstr: "metadata uses an alias or merge key",
		},
		"anchor in metadata": {
			src:  lines("kind: Process", "metadata:", "  name: &n x"),
			kind: "Process", name: "x", generation: 2, wantSubstr: "metadata uses anchor &n",
		},
		"anchor inside old status": {
			src:  lines("kind: Process", "metadata: {name: x}", "status:", "  a: &a 1", "spec: {b: *a}"),
			kind: "Process", name: "x", status: running, wantSubstr: "status uses anchor &a",
		},
		"tab in indentation": {
			src:  "kind: Process\nmetadata: {\n\tname: x}\n",
			kind: "Process", name: "x", status: running, wantSubstr: "indented with a tab",
		},
		"tagged generation": {
			src:  lines("kind: Process", "metadata:", "  name: x", "  generation: !!int 3"),
			kind: "Process", name: "x", generation: 4, wantSubstr: "cannot replace metadata.generation",
		},
		"empty generation value": {
			src:  lines("kind: Process", "metadata:", "  name: x", "  generation:"),
			kind: "Process", name: "x", generation: 4, wantSubstr: "cannot replace metadata.generation",
		},
		"negative generation": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", generation: -1, wantSubstr: "negative generation",
		},
		"status is a sequence": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "- a\n", wantSubstr: "status is not a YAML mapping",
		},
		"status is invalid YAML": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "a: [\n", wantSubstr: "parsing status",
		},
		"status has two documents": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "a: 1\n---\nb: 2\n", wantSubstr: "more than one YAML document",
		},
		"status argument uses anchors": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "a: &a 1\nb: *a\n", wantSubstr: "status uses anchors",
		},
		"status has a document marker": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "---\na: 1\n", wantSubstr: "document marker",
		},
		"status ends in a block scalar without final newline": {
			src: lines("kind: Process", "metadata: {name: x}"), kind: "Process", name: "x", status: "a: |\n  x", wantSubstr: "does not end with a newline",
		},
		"keep-chomped new status would absorb blank lines": {
			src:  lines("kind: Process", "metadata: {name: x}", "status: {}", "", "spec: {}"),
			kind: "Process", name: "x", status: "msg: |+\n  x\n\n", wantIs: errUnsafe,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var status []byte
			if tc.status != "" {
				status = []byte(tc.status)
			}
			got, err := SetStatus([]byte(tc.src), tc.kind, tc.name, tc.generation, status)
			if err == nil {
				t.Fatalf("SetStatus succeeded, want error; got:\n%s", got)
			}
			if got != nil {
				t.Errorf("SetStatus returned output with error %v", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Errorf("error %q does not contain %q", err, tc.wantSubstr)
			}
		})
	}
}

func BenchmarkSetStatus(b *testing.B) {
	src := []byte(lines(
		"# Processes and links of the demo.",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Process",
		"metadata:",
		"  name: ticker        # the ticker",
		"  labels: {app: demo}",
		"  generation: 4",
		"spec:",
		`  command: ["/bin/sh", "-c", "while true; do date; sleep 1; done"]`,
		"  env:",
		"    TZ: UTC",
		"    LANG: C",
		"  restart: always",
		"status:",
		"  phase: Running",
		"  pid: 42",
		"  startedAt: \"2026-01-02T03:04:05Z\"",
		"---",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Link",
		"metadata: {name: a2rtr}",
		"spec:",
		`  tcp: {address: "127.0.0.1:700"}`,
		"  target: router",
		"  # retries",
		"  retries: 3",
		"status:",
		"  connected: true",
		"---",
		"apiVersion: reconciled.dev/v1alpha1",
		"kind: Process",
		"metadata:",
		"  name: router",
		"  annotations:",
		"    note: \"routes # things\"",
		"spec:",
		"  command:",
		"    - /usr/bin/router",
		"    - --port=700",
		"# end of file",
	))
	status := []byte("conditions:\n- type: Ready\n  status: \"True\"\nphase: Running\npid: 43\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SetStatus(src, "Process", "router", 7, status); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSetStatusesEditsEveryDocumentOnce(t *testing.T) {
	var src strings.Builder
	var edits []Edit
	for i := range 50 {
		name := fmt.Sprintf("p%d", i)
		fmt.Fprintf(&src, "---\n# doc %d\nkind: Process\nmetadata: {name: %s}\nspec: {n: %d}\n", i, name, i)
		edits = append(edits, Edit{Kind: "Process", Name: name, Generation: int64(i%3 + 1), Status: []byte(fmt.Sprintf("phase: Running\npid: %d\n", i))})
	}
	edits = append(edits, Edit{Kind: "Process", Name: "missing", Status: []byte(running)}, Edit{Kind: "Process", Name: "p3", Status: []byte(running)})
	out, errs, err := SetStatuses([]byte(src.String()), edits)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if errs[i] != nil {
			t.Errorf("edit %d: %v", i, errs[i])
		}
	}
	if !errors.Is(errs[50], ErrNotFound) {
		t.Errorf("edit of a missing document: %v, want ErrNotFound", errs[50])
	}
	if errs[51] == nil {
		t.Error("a second edit of one document was accepted")
	}
	// Each edit must be what SetStatus alone makes of that document.
	want := []byte(src.String())
	for _, e := range edits[:50] {
		if want, err = SetStatus(want, e.Kind, e.Name, e.Generation, e.Status); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(string(want), string(out)); diff != "" {
		t.Errorf("SetStatuses differs from SetStatus one by one (-want +got):\n%s", diff)
	}
}

// BenchmarkSetStatuses10000 writes the statuses of every document of a
// 10,000-document file in one call: linear in the file's size (issue 11:
// the per-document SetStatus made it quadratic, 88 s for 1,000 documents in
// the daemon).
func BenchmarkSetStatuses10000(b *testing.B) {
	var src strings.Builder
	var edits []Edit
	for i := range 10000 {
		name := fmt.Sprintf("p%05d", i)
		fmt.Fprintf(&src, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: %s}\nspec:\n  command: [/bin/sleep, infinity]\n", name)
		edits = append(edits, Edit{Kind: "Process", Name: name, Generation: 1, Status: []byte("observedGeneration: 1\nphase: Running\npid: 4242\nrestarts: 0\n")})
	}
	data := []byte(src.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := SetStatuses(data, edits); err != nil {
			b.Fatal(err)
		}
	}
}
