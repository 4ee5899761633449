// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package yamledit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	yaml "go.yaml.in/yaml/v3"
)

// seedFiles are realistic resource files used to seed the fuzzer and the
// benchmark.
var seedFiles = []string{
	`# a comment that must survive
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: ticker        # trailing comment survives
  labels: {app: demo}
spec:
  command: ["/bin/sh", "-c", "echo hi"]   # must survive
status:
  phase: Running
  pid: 42
---
kind: Link
metadata: {name: a2rtr}
spec:
  tcp: {address: "127.0.0.1:700"}
`,
	`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: ticker
  generation: 3
spec:
  command:
    - /bin/sleep
    - "100"
`,
	`status:
  phase: Pending
kind: 'Process'
metadata:
  name: "ticker"
spec: {}
`,
	`kind: Process
metadata:
  name: ticker
status: {}
spec:
  restart: always

# trailing comment block
# of the document
`,
	`kind: Process
metadata: {name: ticker, generation: 1}
spec:
  env:
    HOME: /root
status:
  message: |
    line one
    line two
  phase: Failed`,
	`---
# first document
kind: Link
metadata:
  name: a2rtr
spec:
  tcp: {address: "127.0.0.1:700"}
...
---
kind: Process
metadata:
  name: ticker
status:
---
kind: Process
metadata:
  name: other
`,
	`apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  annotations:
    note: "a # not a comment"
data:
  script: |
    #!/bin/sh
    # comment inside a block scalar
    echo hi
status:
  observedGeneration: 2   # inline

  conditions:
    - type: Ready
      status: "True"
# column-0 comment kept after status

spec: {}
`,
	`kind: Process
metadata:
    name: ticker
    labels:
        app: demo
spec:
    command: [a, b]
status: ~
`,
	`kind: Process
metadata:
  # who am I
  name: ticker
spec:
  x: 1
---
kind: Process
metadata:
  name: ticker
spec:
  x: 2
`,
	"\xef\xbb\xbfkind: Process\nmetadata:\n  name: ticker\nspec:\n  keep: |+\n    text\n\n",
	`kind: Link
metadata:
  name: l1
  generation: "7"
spec:
  udp: {address: "[::1]:53"}
status:
  bytes: 1024
  peers: [a, b]
`,
	`# empty documents around
---
---
kind: Process
metadata: {name: ticker}
---
`,
}

var seedStatuses = []string{
	"phase: Running\npid: 42\n",
	"",
	"{}\n",
	"message: |\n  multi\n  line\nphase: Failed\n",
	"conditions:\n- type: Ready\n  status: \"True\"\n",
	"a: |+\n  keep\n\n",
	"# only a comment\n",
	"phase: Running",
}

// strict makes the fuzz target fail when SetStatus refuses an edit because
// its own self-check failed, which is useful to hunt for edge cases the
// planner could handle better. Enable with YAMLEDIT_STRICT=1.
var strict = os.Getenv("YAMLEDIT_STRICT") != ""

func FuzzSetStatus(f *testing.F) {
	for i, src := range seedFiles {
		kind, name := pickDocument([]byte(src), i)
		st := seedStatuses[i%len(seedStatuses)]
		f.Add([]byte(src), kind, name, int64(i%3), []byte(st))
		f.Add([]byte(src), "Process", "ticker", int64(5), []byte(seedStatuses[(i+1)%len(seedStatuses)]))
	}
	f.Fuzz(func(t *testing.T, src []byte, kind, name string, generation int64, status []byte) {
		out, err := SetStatus(src, kind, name, generation, status)
		if errors.Is(err, ErrNotFound) {
			// Retry with a document that exists, to reach the editing code
			// more often.
			kind, name = pickDocument(src, len(name))
			out, err = SetStatus(src, kind, name, generation, status)
		}
		if err != nil {
			if strict && errors.Is(err, errUnsafe) {
				t.Fatalf("self-check failed: %v", err)
			}
			return
		}
		checkSetStatus(t, src, kind, name, generation, status, out)
	})
}

// pickDocument returns the kind and metadata.name of one of the documents of
// src that have both, chosen by n.
func pickDocument(src []byte, n int) (kind, name string) {
	docs, err := decodeAll(src)
	if err != nil {
		return "", ""
	}
	type id struct{ kind, name string }
	var ids []id
	for _, d := range docs {
		k, _ := lookup(d, "kind")
		md, _ := lookup(d, "metadata")
		nm, _ := lookup(md, "name")
		ks, ok1 := k.(string)
		ns, ok2 := nm.(string)
		if ok1 && ok2 {
			ids = append(ids, id{ks, ns})
		}
	}
	if len(ids) == 0 {
		return "", ""
	}
	i := ids[n%len(ids)]
	return i.kind, i.name
}

func decodeAll(b []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		docs = append(docs, v)
	}
}

var cmpNaN = cmp.Comparer(func(a, b float64) bool { return a == b || (a != a && b != b) })

// checkSetStatus checks the properties every successful SetStatus call must
// have, independently of the implementation, and that SetStatus is
// idempotent.
func checkSetStatus(t *testing.T, src []byte, kind, name string, generation int64, status, out []byte) {
	t.Helper()
	before, err := decodeAll(src)
	if err != nil {
		t.Fatalf("SetStatus accepted input that does not parse: %v", err)
	}
	after, err := decodeAll(out)
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	if len(before) != len(after) {
		t.Fatalf("output has %d documents, want %d\n%s", len(after), len(before), out)
	}
	target := -1
	for i, d := range before {
		if k, n, ok := identity(d); ok && k == kind && n == name {
			target = i
			break
		}
	}
	if target < 0 {
		t.Fatalf("SetStatus succeeded but no document is %s/%s", kind, name)
	}

	var wantStatus any
	if sts, err := decodeAll(status); err != nil || len(sts) > 1 {
		t.Fatalf("SetStatus accepted bad status %q: %v", status, err)
	} else if len(sts) == 1 {
		wantStatus = sts[0]
	}
	if m, ok := wantStatus.(map[string]any); ok && len(m) == 0 {
		wantStatus = nil
	}
	gotStatus, hasStatus := lookup(after[target], "status")
	if wantStatus == nil {
		if hasStatus {
			t.Errorf("status not removed: %v\n%s", gotStatus, out)
		}
	} else if diff := cmp.Diff(wantStatus, gotStatus, cmpNaN); diff != "" {
		t.Errorf("status mismatch (-want +got):\n%s\n%s", diff, out)
	}
	md, _ := lookup(after[target], "metadata")
	if generation > 0 {
		g, _ := lookup(md, "generation")
		if g != any(int(generation)) {
			t.Errorf("metadata.generation = %#v, want %d\n%s", g, generation, out)
		}
	}
	for i := range before {
		if i == target {
			remove(after[i], "status")
			remove(md, "generation")
			remove(before[i], "status")
			bmd, _ := lookup(before[i], "metadata")
			remove(bmd, "generation")
		}
		if diff := cmp.Diff(before[i], after[i], cmpNaN); diff != "" {
			t.Errorf("document %d changed (-before +after):\n%s\n%s", i+1, diff, out)
		}
	}

	checkComments(t, src, target, out)

	again, err := SetStatus(out, kind, name, generation, status)
	if err != nil {
		t.Fatalf("second SetStatus: %v\n%s", err, out)
	}
	if diff := cmp.Diff(string(out), string(again)); diff != "" {
		t.Errorf("SetStatus is not idempotent (-once +twice):\n%s", diff)
	}
}

// checkComments checks that all comment lines of src, except those that may
// belong to the status block of document target, appear in out in order.
func checkComments(t *testing.T, src []byte, target int, out []byte) {
	t.Helper()
	skipFrom, skipTo := -1, -1
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for i := 0; i <= target; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("decoding document %d: %v", i+1, err)
		}
		if i < target || len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		for j := 0; j+1 < len(root.Content); j += 2 {
			if root.Content[j].Value == "status" {
				skipFrom = root.Content[j].Line - 1
			}
		}
	}
	srcLines := strings.Split(string(src), "\n")
	if skipFrom >= 0 {
		skipTo = skipFrom + 1
		for skipTo < len(srcLines) {
			l := srcLines[skipTo]
			if l != "" && l[0] != ' ' && l[0] != '\t' && l[0] != '#' {
				break
			}
			skipTo++
		}
	}
	var want []string
	for i, l := range srcLines {
		if i >= skipFrom && i < skipTo {
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(l, " "), "#") {
			want = append(want, l)
		}
	}
	k := 0
	for _, l := range strings.Split(string(out), "\n") {
		if k < len(want) && l == want[k] {
			k++
		}
	}
	if k < len(want) {
		t.Errorf("comment line %q lost or reordered\n%s", want[k], out)
	}
}
