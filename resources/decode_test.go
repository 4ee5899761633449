// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// lines joins its arguments with "\n" and appends a final "\n".
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// procHead is the first five lines of a Process named "ticker"; the spec's
// fields start on line 6.
var procHead = []string{
	"apiVersion: reconciled.dev/v1alpha1", // 1
	"kind: Process",                       // 2
	"metadata:",                           // 3
	"  name: ticker",                      // 4
	"spec:",                               // 5
}

// proc returns a Process file whose spec is the given lines (line 6 on).
func proc(spec ...string) string { return lines(append(append([]string{}, procHead...), spec...)...) }

// wantErr is an expected Error; Message need only be contained.
type wantErr struct {
	Line    int
	Field   string
	Message string
}

func checkErrs(t *testing.T, file string, got []*Error, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), errText(got))
	}
	for i, w := range want {
		g := got[i]
		if g.File != file || g.Line != w.Line || g.Field != w.Field || !strings.Contains(g.Message, w.Message) {
			t.Errorf("error %d = %#v\nwant file %q line %d field %q message containing %q", i, *g, file, w.Line, w.Field, w.Message)
		}
	}
}

func errText(errs []*Error) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// TestDecodeFileDocuments checks how a file splits into documents: empty
// documents and comment-only documents are skipped, every document is
// located at its first key, and valid ones are defaulted objects.
func TestDecodeFileDocuments(t *testing.T) {
	type wantDoc struct {
		Line       int
		Kind, Name string
		Valid      bool
	}
	tests := map[string]struct {
		src  string
		want []wantDoc
	}{
		"empty file":         {src: ""},
		"only comments":      {src: lines("# nothing here", "# yet")},
		"only separators":    {src: lines("---", "---", "...")},
		"explicit null":      {src: lines("~")},
		"single, no marker":  {src: proc(`  command: ["/bin/sleep", "1"]`), want: []wantDoc{{1, "Process", "ticker", true}}},
		"single with marker": {src: "---\n" + proc(`  command: ["/bin/sleep", "1"]`), want: []wantDoc{{2, "Process", "ticker", true}}},
		"leading comments": {
			src:  lines("# The quickstart", "# second comment line", "") + proc("  command: [/bin/true]  # trailing"),
			want: []wantDoc{{4, "Process", "ticker", true}},
		},
		"five kinds with empty documents between": {
			src: lines(
				"# all kinds",
				"---",
				"apiVersion: reconciled.dev/v1alpha1", // 3
				"kind: Process",
				"metadata: {name: pydecnet}",
				"spec:",
				"  command: [/opt/hecnet/bin/pydecnet]",
				"---",
				"---",
				"# a comment-only document",
				"---",
				"apiVersion: reconciled.dev/v1alpha1", // 12
				"kind: Link",
				"metadata: {name: a2rtr}",
				"spec: {tcp: {address: \"a2rtr.example.net:700\"}}",
				"---",
				"apiVersion: reconciled.dev/v1alpha1", // 17
				"kind: Module",
				"metadata: {name: sensor-reader}",
				"spec: {exec: [/usr/bin/python3, main.py]}",
				"---",
				"",
				"apiVersion: reconciled.dev/v1alpha1", // 23
				"kind: PiNode",
				"metadata: {name: pi-10}",
				"spec:",
				"  mac: \"dc:a6:32:01:02:03\"",
				"  ip: 172.16.7.10",
				"  switch: {address: \"172.16.7.129:161\", port: 10, community: private}",
				"---",
				"apiVersion: reconciled.dev/v1alpha1", // 31
				"kind: AlertRoute",
				"metadata: {name: ops}",
				"spec:",
				"  receivers:",
				"  - log: {}",
				"---",
			),
			want: []wantDoc{
				{3, "Process", "pydecnet", true},
				{12, "Link", "a2rtr", true},
				{17, "Module", "sensor-reader", true},
				{23, "PiNode", "pi-10", true},
				{31, "AlertRoute", "ops", true},
			},
		},
		"invalid document between valid ones keeps its neighbours": {
			src: proc("  command: [/bin/true]") + lines(
				"---",
				"apiVersion: reconciled.dev/v1alpha1", // 8
				"kind: Link",
				"metadata: {name: broken}",
				"spec: {interval: 30s}",
				"---",
				"apiVersion: reconciled.dev/v1alpha1", // 13
				"kind: Link",
				"metadata: {name: fine}",
				"spec: {icmp: {host: fine.example.net}}",
			),
			want: []wantDoc{{1, "Process", "ticker", true}, {8, "Link", "broken", false}, {13, "Link", "fine", true}},
		},
		"document that is a list": {
			src:  lines("- kind: Process", "  metadata: {name: x}"),
			want: []wantDoc{{1, "", "", false}},
		},
		"document that is a scalar": {
			src:  lines("---", "just some words"),
			want: []wantDoc{{2, "", "", false}},
		},
		"identity is read even when invalid": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata:", "  name: half", "spec:", "  comand: [x]"),
			want: []wantDoc{{1, "Process", "half", false}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := DecodeFile("res.yaml", []byte(tc.src))
			if err != nil {
				t.Fatalf("DecodeFile: %v", err)
			}
			var got []wantDoc
			for _, d := range docs {
				got = append(got, wantDoc{d.Line, d.Kind, d.Name, d.Object != nil})
				if d.File != "res.yaml" {
					t.Errorf("document File = %q", d.File)
				}
				if (d.Object != nil) == (len(d.Errs) > 0) {
					t.Errorf("document at line %d: Object set = %v but %d errors: %v", d.Line, d.Object != nil, len(d.Errs), d.Err())
				}
				if (d.Object != nil) != (d.SpecHash != "") {
					t.Errorf("document at line %d: SpecHash %q with Object %v", d.Line, d.SpecHash, d.Object)
				}
				if d.Object != nil {
					if d.Object.GetTypeMeta().Kind != d.Kind || d.Object.GetObjectMeta().Name != d.Name {
						t.Errorf("object %s/%s does not match document %s/%s", d.Object.GetTypeMeta().Kind, d.Object.GetObjectMeta().Name, d.Kind, d.Name)
					}
					if d.Err() != nil {
						t.Errorf("Err() of a valid document = %v", d.Err())
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("documents mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeFileDefaults checks that a decoded object is defaulted.
func TestDecodeFileDefaults(t *testing.T) {
	docs, err := DecodeFile("res.yaml", []byte(proc("  command: [/bin/true]")))
	if err != nil || len(docs) != 1 || docs[0].Object == nil {
		t.Fatalf("DecodeFile = %v, %v", docs, err)
	}
	p := docs[0].Object.(*v1alpha1.Process)
	if p.Spec.RestartPolicy != v1alpha1.RestartAlways || p.Spec.StopSignal != "SIGTERM" ||
		p.Spec.StopTimeout == nil || p.Spec.StopTimeout.Duration != 10*time.Second ||
		p.Spec.Backoff == nil || p.Spec.Backoff.Max.Duration != time.Minute {
		t.Errorf("object not defaulted: %+v", p.Spec)
	}
}

// TestDecodeFileErrors checks that every problem is reported with the file,
// the line of the offending key or value, and the field path.
func TestDecodeFileErrors(t *testing.T) {
	tests := map[string]struct {
		src  string
		want []wantErr
	}{
		"unknown field with suggestion": {
			src:  proc("  command: [/bin/true]", "  restartPolicy: Always", "  comand: [x]"),
			want: []wantErr{{8, "spec.comand", `unknown field (did you mean "command"?)`}},
		},
		"unknown field, case typo": {
			src:  proc("  command: [/bin/true]", "  WorkingDir: /tmp"),
			want: []wantErr{{7, "spec.WorkingDir", `did you mean "workingDir"?`}},
		},
		"unknown field without a close name": {
			src:  proc("  command: [/bin/true]", "  totallyUnrelated: 1"),
			want: []wantErr{{7, "spec.totallyUnrelated", "unknown field"}},
		},
		"unknown nested field": {
			src:  proc("  command: [/bin/true]", "  backoff:", "    initial: 1s", "    maxx: 1m"),
			want: []wantErr{{9, "spec.backoff.maxx", `did you mean "max"?`}},
		},
		"unknown top-level field": {
			src:  proc("  command: [/bin/true]") + "sepc: {}\n",
			want: []wantErr{{7, "sepc", `did you mean "spec"?`}},
		},
		"unknown metadata field": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata:", "  name: ticker", "  lables: {a: b}", "spec: {command: [x]}"),
			want: []wantErr{{5, "metadata.lables", `did you mean "labels"?`}},
		},
		"command is a string": {
			src:  proc(`  command: "ls"`),
			want: []wantErr{{6, "spec.command", `must be a list, not "ls"`}},
		},
		"command is a mapping": {
			src:  proc("  command:", "    prog: ls"),
			want: []wantErr{{7, "spec.command", "must be a list, not a mapping"}},
		},
		"restartPolicy is a number": {
			src:  proc("  command: [/bin/true]", "  restartPolicy: 3"),
			want: []wantErr{{7, "spec.restartPolicy", `must be a string, not the number 3 (quote it: "3")`}},
		},
		"restartPolicy is a list": {
			src:  proc("  command: [/bin/true]", "  restartPolicy: [Always]"),
			want: []wantErr{{7, "spec.restartPolicy", "must be a string, not a list"}},
		},
		"restartPolicy not supported": {
			src:  proc("  command: [/bin/true]", "  restartPolicy: Sometimes"),
			want: []wantErr{{7, "spec.restartPolicy", `Unsupported value: "Sometimes"`}},
		},
		"env value is a number": {
			src:  proc("  command: [/bin/true]", "  env:", "    PYTHONUNBUFFERED: 1"),
			want: []wantErr{{8, "spec.env[PYTHONUNBUFFERED]", "must be a string, not the number 1"}},
		},
		"bad duration": {
			src:  proc("  command: [/bin/true]", "  stopTimeout: soon"),
			want: []wantErr{{7, "spec.stopTimeout", `want a duration such as "10s" or "1m30s", got "soon"`}},
		},
		"duration given as a list": {
			src:  proc("  command: [/bin/true]", "  stopTimeout: [1, 2]"),
			want: []wantErr{{7, "spec.stopTimeout", `want a duration such as "10s" or "1m30s", got a list`}},
		},
		"duration given as a number": {
			src:  proc("  command: [/bin/true]", "  stopTimeout: 5"),
			want: []wantErr{{7, "spec.stopTimeout", `got the number 5 (write "5s")`}},
		},
		"other errors reported after a type error": {
			src: proc("  command: [/bin/true]", "  stopTimeout: [1]", "  restartPolicy: Sometimes", "  backoff: {initial: 5}"),
			want: []wantErr{{7, "spec.stopTimeout", "got a list"}, {9, "spec.backoff.initial", `(write "5s")`},
				{8, "spec.restartPolicy", `Unsupported value: "Sometimes"`}},
		},
		"a field that did not decode is not also missing": {
			src:  proc("  command: /bin/true"),
			want: []wantErr{{6, "spec.command", "must be a list"}},
		},
		"nested bad duration": {
			src:  proc("  command: [/bin/true]", "  backoff:", "    initial: 1s", "    max: forever"),
			want: []wantErr{{9, "spec.backoff.max", `got "forever"`}},
		},
		"negative duration fails validation": {
			src:  proc("  command: [/bin/true]", "  stopTimeout: -1s"),
			want: []wantErr{{7, "spec.stopTimeout", "must be greater than zero"}},
		},
		"bool is a string": {
			src:  proc("  command: [/bin/true]", "  readiness:", `    notify: "yes"`),
			want: []wantErr{{8, "spec.readiness.notify", "must be true or false"}},
		},
		"integer is a string": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Link", "metadata: {name: a}", "spec:", "  icmp: {host: a}", `  failureThreshold: "3"`),
			want: []wantErr{{6, "spec.failureThreshold", "must be an integer"}},
		},
		"integer out of range": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Link", "metadata: {name: a}", "spec:", "  icmp: {host: a}", "  failureThreshold: 99999999999"),
			want: []wantErr{{6, "spec.failureThreshold", "out of range"}},
		},
		"duplicate key": {
			src:  proc("  command: [/bin/true]", "  user: a", "  command: [/bin/false]"),
			want: []wantErr{{8, "spec.command", "duplicate key"}},
		},
		"duplicate map key": {
			src:  proc("  command: [/bin/true]", "  env:", "    A: x", "    A: y"),
			want: []wantErr{{9, "spec.env[A]", "duplicate key"}},
		},
		"merge key": {
			src:  proc("  command: [/bin/true]", "  <<: {user: a}"),
			want: []wantErr{{7, "spec.<<", "merge keys (<<) are not supported"}},
		},
		"missing kind": {
			src:  lines("# c", "apiVersion: reconciled.dev/v1alpha1", "metadata: {name: x}", "spec: {}"),
			want: []wantErr{{2, "kind", "required: one of AlertRoute, Check, Host, Link, Module, PiNode, Process"}},
		},
		"unknown kind": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Pod", "metadata: {name: x}", "spec: {}"),
			want: []wantErr{{2, "kind", `unknown kind "Pod"`}},
		},
		"kind must be spelled as in files": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: process", "metadata: {name: x}", "spec: {command: [x]}"),
			want: []wantErr{{2, "kind", `unknown kind "process"`}},
		},
		"missing spec": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata: {name: x}"),
			want: []wantErr{{1, "spec", "required"}},
		},
		"empty spec fails validation on its line": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata: {name: x}", "spec:"),
			want: []wantErr{{4, "spec.command", "Required value"}},
		},
		"spec is a list": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata: {name: x}", "spec:", "- command: [x]"),
			want: []wantErr{{5, "spec", "must be a mapping, not a list"}},
		},
		"document is a list": {
			src:  lines("# leading", "- apiVersion: reconciled.dev/v1alpha1", "  kind: Process"),
			want: []wantErr{{2, "", "a resource must be a mapping"}},
		},
		"wrong apiVersion": {
			src:  lines("apiVersion: reconciled.dev/v1", "kind: Process", "metadata: {name: x}", "spec: {command: [x]}"),
			want: []wantErr{{1, "apiVersion", "must be reconciled.dev/v1alpha1"}},
		},

		"name with uppercase": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata:", "  labels: {a: b}", "  name: Ticker", "spec: {command: [x]}"),
			want: []wantErr{{5, "metadata.name", "RFC 1123 label"}},
		},
		"name too long": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata:", "  name: "+strings.Repeat("x", 64), "spec: {command: [x]}"),
			want: []wantErr{{4, "metadata.name", "must be no more than 63 characters"}},
		},
		"missing name": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Process", "metadata: {}", "spec: {command: [x]}"),
			want: []wantErr{{3, "metadata.name", "every resource needs a name"}},
		},
		"validation error inside a list points at the element": {
			src: lines("apiVersion: reconciled.dev/v1alpha1", "kind: AlertRoute", "metadata: {name: r}", "spec:",
				"  receivers:",
				"  - log: {}",
				"  - email:",
				"      smarthost: smtp.example.net:587",
				"      from: alerts@example.net",
				"      to:",
				"      - ops@example.net",
				"      - not-an-address"),
			want: []wantErr{{12, "spec.receivers[1].email.to[1]", "not an email address"}},
		},
		"validation error on a map entry": {
			src:  proc("  command: [/bin/true]", "  env:", "    OK: a", `    "A=B": b`),
			want: []wantErr{{9, "spec.env[A=B]", "environment names"}},
		},
		"validation error on a flow mapping": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: PiNode", "metadata: {name: pi}", "spec:", `  mac: "dc:a6:32:01:02"`, "  ip: 172.16.7.10", `  switch: {address: "172.16.7.129:161", port: 0}`),
			want: []wantErr{{5, "spec.mac", "MAC address"}, {7, "spec.switch.port", "switch port number"}},
		},
		"exactly-one error points at the parent": {
			src:  lines("apiVersion: reconciled.dev/v1alpha1", "kind: Link", "metadata: {name: l}", "spec:", "  interval: 10s"),
			want: []wantErr{{4, "spec", "exactly one of exec, http, icmp, tcp"}},
		},
		"several errors, each on its line": {
			src:  proc(`  command: "ls"`, "  restartPolicy: 3", "  stopTimeout: soon", "  bogus: 1"),
			want: []wantErr{{6, "spec.command", "must be a list"}, {7, "spec.restartPolicy", "must be a string"}, {8, "spec.stopTimeout", "want a duration"}, {9, "spec.bogus", "unknown field"}},
		},
		"self-referencing alias": {
			src:  proc("  command: [/bin/true]", "  env: &e {A: *e}"),
			want: []wantErr{{7, "spec.env[A]", "alias *e refers to its own anchor"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := DecodeFile("dir/res.yaml", []byte(tc.src))
			if err != nil {
				t.Fatalf("DecodeFile: %v", err)
			}
			if len(docs) != 1 {
				t.Fatalf("got %d documents, want 1", len(docs))
			}
			d := docs[0]
			if d.Object != nil {
				t.Fatalf("invalid document decoded to an object: %+v", d.Object)
			}
			if d.SpecHash != "" || d.HasStatus {
				t.Errorf("invalid document has SpecHash %q, HasStatus %v", d.SpecHash, d.HasStatus)
			}
			checkErrs(t, "dir/res.yaml", d.Errs, tc.want)
			if d.Err() == nil {
				t.Error("Err() = nil for an invalid document")
			}
		})
	}
}

// TestDecodeFileSyntaxErrors checks that a file that is not YAML gives one
// file-level error with the line an editor shows, and no documents.
func TestDecodeFileSyntaxErrors(t *testing.T) {
	tests := map[string]struct {
		src  string
		want wantErr
	}{
		"unclosed flow list": {
			src:  proc("  command: [ls", "  user: x"),
			want: wantErr{6, "", "did not find expected ',' or ']'"},
		},
		"unclosed flow mapping": {
			src:  proc("  env: {A: b", "  command: [ls]"),
			want: wantErr{6, "", "did not find expected ',' or '}'"},
		},
		"tab indentation": {
			src:  proc("\tcommand: [ls]"),
			want: wantErr{6, "", "found character that cannot start any token"},
		},
		"under-indented key": {
			src:  proc("  command: [ls]", " user: x"),
			want: wantErr{7, "", "did not find expected key"},
		},
		"missing colon": {
			src:  proc("  command [ls]", "  user: x"),
			want: wantErr{7, "", "mapping values are not allowed in this context"},
		},
		"list item among keys": {
			src:  lines("a:", "  b: 1", "d: 3", "- e"),
			want: wantErr{4, "", "did not find expected key"},
		},
		"unterminated quote": {
			src:  proc(`  command: ["ls]`),
			want: wantErr{6, "", "found unexpected end of stream"},
		},
		"undefined tag handle": {
			src:  proc("  command: !e!x [ls]"),
			want: wantErr{6, "", "found undefined tag handle"},
		},
		"error in a later document": {
			src:  proc("  command: [ls]") + lines("---", "kind: [x", "y: 2"),
			want: wantErr{8, "", "did not find expected ',' or ']'"},
		},
		"unknown anchor": {
			src:  proc("  command: *nope"),
			want: wantErr{6, "", "unknown anchor 'nope' referenced"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := DecodeFile("res.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("DecodeFile succeeded with %d documents", len(docs))
			}
			if docs != nil {
				t.Errorf("DecodeFile returned documents with a file error: %v", docs)
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			checkErrs(t, "res.yaml", []*Error{e}, []wantErr{tc.want})
			if !strings.HasPrefix(e.Message, "invalid YAML: ") {
				t.Errorf("message %q does not start with \"invalid YAML: \"", e.Message)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := map[string]struct {
		err  Error
		want string
	}{
		"full":     {Error{File: "a.yaml", Line: 3, Field: "spec.command", Message: "required"}, "a.yaml:3: spec.command: required"},
		"no field": {Error{File: "a.yaml", Line: 1, Message: "invalid YAML: x"}, "a.yaml:1: invalid YAML: x"},
		"no line":  {Error{File: "a.yaml", Field: "kind", Message: "m"}, "a.yaml: kind: m"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDecodeFileStatus checks that status is read leniently: a status the
// daemon cannot read never blocks the spec.
func TestDecodeFileStatus(t *testing.T) {
	tests := map[string]struct {
		status    []string
		hasStatus bool
		wantPhase string
		wantPid   int
	}{
		"no status":    {},
		"good status":  {status: []string{"status:", "  phase: Running", "  pid: 4242", "  restarts: 3", "  observedGeneration: 2"}, hasStatus: true, wantPhase: "Running", wantPid: 4242},
		"empty status": {status: []string{"status: {}"}, hasStatus: true},
		"status with conditions": {status: []string{
			"status:",
			"  phase: BackOff",
			"  conditions:",
			"  - type: Ready",
			`    status: "False"`,
			"    reason: BackOff",
			"    message: exited 1",
			`    lastTransitionTime: "2026-11-21T10:00:00Z"`,
			"    observedGeneration: 3",
		}, hasStatus: true, wantPhase: "BackOff"},
		"pid is garbage":          {status: []string{"status:", "  phase: Running", "  pid: lots"}},
		"unknown status field":    {status: []string{"status:", "  phase: Running", "  mood: happy"}},
		"status is a list":        {status: []string{"status: [1, 2]"}},
		"status is a scalar":      {status: []string{"status: broken"}},
		"bad time in status":      {status: []string{"status:", "  startedAt: yesterday"}},
		"status before spec":      {status: []string{"status: {phase: Running}"}, hasStatus: true, wantPhase: "Running"},
		"null status":             {status: []string{"status:"}, hasStatus: true},
		"alias loop in status":    {status: []string{"status: &s", "  phase: Running", "  lastExit: *s"}},
		"huge number in status":   {status: []string{"status:", "  restarts: 999999999999999999999999"}},
		"garbage in a condition":  {status: []string{"status:", "  conditions:", "  - type: Ready", "    status: [x]"}},
		"condition time is wrong": {status: []string{"status:", "  conditions:", "  - {type: Ready, lastTransitionTime: 5}"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := proc("  command: [/bin/true]") + lines(tc.status...)
			if name == "status before spec" {
				src = lines(append(append(append([]string{}, procHead[:4]...), tc.status...), "spec:", "  command: [/bin/true]")...)
			}
			if len(tc.status) == 0 {
				src = proc("  command: [/bin/true]")
			}
			docs, err := DecodeFile("res.yaml", []byte(src))
			if err != nil {
				t.Fatalf("DecodeFile: %v", err)
			}
			if len(docs) != 1 {
				t.Fatalf("got %d documents", len(docs))
			}
			d := docs[0]
			if d.Object == nil {
				t.Fatalf("a bad status made the document invalid: %v", d.Err())
			}
			if d.HasStatus != tc.hasStatus {
				t.Errorf("HasStatus = %v, want %v", d.HasStatus, tc.hasStatus)
			}
			st := d.Object.(*v1alpha1.Process).Status
			if st.Phase != tc.wantPhase || st.Pid != tc.wantPid {
				t.Errorf("status = %+v, want phase %q pid %d", st, tc.wantPhase, tc.wantPid)
			}
			if !tc.hasStatus {
				if diff := cmp.Diff(v1alpha1.ProcessStatus{}, st); diff != "" {
					t.Errorf("status not discarded (-want +got):\n%s", diff)
				}
			}
			// Status never changes the spec hash.
			want := hashOf(t, proc("  command: [/bin/true]"))
			if d.SpecHash != want {
				t.Errorf("SpecHash with status %q != without %q", d.SpecHash, want)
			}
		})
	}
}

func hashOf(t *testing.T, src string) string {
	t.Helper()
	docs, err := DecodeFile("res.yaml", []byte(src))
	if err != nil || len(docs) != 1 || docs[0].Object == nil {
		var errs error
		if len(docs) == 1 {
			errs = docs[0].Err()
		}
		t.Fatalf("decode %q: %v %v", src, err, errs)
	}
	return docs[0].SpecHash
}

// TestSpecHash checks that the spec hash ignores formatting, key order,
// comments, metadata, status and spelled-out defaults, and sees content.
func TestSpecHash(t *testing.T) {
	base := proc(
		`  command: ["/opt/hecnet/bin/pydecnet", "/etc/decnet/theark.conf"]`,
		"  env: {PYTHONUNBUFFERED: \"1\", LANG: C}",
		"  stopTimeout: 15s",
	)
	linkBase := lines("apiVersion: reconciled.dev/v1alpha1", "kind: Link", "metadata: {name: a2rtr}", "spec:", "  tcp: {address: \"a2rtr.example.net:700\"}")
	modBase := lines("apiVersion: reconciled.dev/v1alpha1", "kind: Module", "metadata: {name: sensor}", "spec:", "  exec: [/usr/bin/python3, main.py]")
	tests := map[string]struct {
		a, b string
		same bool
	}{
		"identical": {a: base, b: base, same: true},
		"block style and comments": {a: base, b: lines(
			"# a comment",
			"apiVersion: reconciled.dev/v1alpha1",
			"kind: Process",
			"metadata:",
			"  name: ticker   # the name",
			"spec:",
			"  # the program",
			"  stopTimeout: 15s",
			"  env:",
			"    LANG: 'C'",
			`    PYTHONUNBUFFERED: "1"`,
			"  command:",
			"  - /opt/hecnet/bin/pydecnet",
			"  - /etc/decnet/theark.conf",
		), same: true},
		"duration spelled differently": {a: base, b: strings.Replace(base, "stopTimeout: 15s", "stopTimeout: 15000ms", 1), same: true},
		"spelled-out defaults": {a: base, b: base + lines(
			"  restartPolicy: Always",
			"  backoff: {initial: 100ms, max: 1m, resetAfter: 10m}",
			"  stopSignal: SIGTERM",
		), same: true},
		"partial backoff default": {a: base, b: base + "  backoff: {max: 60s}\n", same: true},
		"metadata and status":     {a: base, b: strings.Replace(base, "  name: ticker\n", "  name: ticker\n  generation: 7\n  labels: {a: b}\n", 1) + lines("status:", "  phase: Running"), same: true},
		"link defaults":           {a: linkBase, b: linkBase + lines("  interval: 30s", "  timeout: 5s", "  failureThreshold: 3", "  successThreshold: 1"), same: true},
		"module defaults":         {a: modBase, b: modBase + lines("  type: simple", "  restart: on-failure", "  state: Running", "  enabled: true", "  scope: system", "  unitName: sensor.service"), same: true},

		"argument changed":      {a: base, b: strings.Replace(base, "theark.conf", "other.conf", 1)},
		"argument order":        {a: base, b: strings.Replace(base, `["/opt/hecnet/bin/pydecnet", "/etc/decnet/theark.conf"]`, `["/etc/decnet/theark.conf", "/opt/hecnet/bin/pydecnet"]`, 1)},
		"env value changed":     {a: base, b: strings.Replace(base, `PYTHONUNBUFFERED: "1"`, `PYTHONUNBUFFERED: "0"`, 1)},
		"non-default value":     {a: base, b: base + "  restartPolicy: Never\n"},
		"timeout changed":       {a: base, b: strings.Replace(base, "15s", "16s", 1)},
		"empty vs missing list": {a: base, b: base + "  removeBeforeStart: [/tmp/x]\n"},
		"link non-default":      {a: linkBase, b: linkBase + "  interval: 31s\n"},
		"module enabled false":  {a: modBase, b: modBase + "  enabled: false\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ha, hb := hashOf(t, tc.a), hashOf(t, tc.b)
			if (ha == hb) != tc.same {
				t.Errorf("hashes %s and %s: same = %v, want %v", ha, hb, ha == hb, tc.same)
			}
		})
	}
}

// billionLaughs returns YAML lines that define a list which expands to
// 10^levels scalars through aliases, each line prefixed by indent.
func billionLaughs(indent string, levels int) []string {
	out := []string{indent + "- &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"}
	for i := 1; i < levels; i++ {
		r := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", ")
		out = append(out, fmt.Sprintf("%s- &a%d [%s]", indent, i, r))
	}
	return out
}

// TestDecodeFileAliasBomb checks that alias bombs fail fast with an error
// wherever they are placed, instead of hanging or exhausting memory.
func TestDecodeFileAliasBomb(t *testing.T) {
	mod := []string{"apiVersion: reconciled.dev/v1alpha1", "kind: Module", "metadata: {name: bomb}", "spec:", "  exec: [/bin/true]"}
	cat := func(parts ...[]string) string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return lines(all...)
	}
	tests := map[string]struct {
		src     string
		invalid bool // else: valid, the bomb is in the (lenient) status
	}{
		"in a directive value":  {src: cat(mod, []string{"  extra:", "    Service:", "      X:"}, billionLaughs("      ", 9)), invalid: true},
		"in a string list":      {src: cat(mod, []string{"  after:"}, billionLaughs("  ", 9)), invalid: true},
		"in an unknown field":   {src: cat(mod, []string{"lol:"}, billionLaughs("  ", 9)), invalid: true},
		"in a label":            {src: cat([]string{"x:"}, billionLaughs("  ", 9), mod[:2], []string{"metadata:", "  name: bomb", "  labels: {x: *a8}"}, mod[3:]), invalid: true},
		"in status conditions":  {src: cat(mod, []string{"status:", "  conditions:"}, billionLaughs("  ", 9))},
		"in a status time":      {src: cat(mod, []string{"status:", "  since:"}, billionLaughs("    ", 9))},
		"in the status mapping": {src: cat(mod, []string{"status:", "  x:"}, billionLaughs("  ", 9), []string{"  y: *a8"})},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			type result struct {
				docs []*Document
				err  error
			}
			done := make(chan result, 1)
			go func() {
				docs, err := DecodeFile("bomb.yaml", []byte(tc.src))
				done <- result{docs, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("DecodeFile did not return within 10s")
			}
			if r.err != nil {
				return // refusing the whole file is fine too
			}
			if len(r.docs) == 0 {
				t.Fatal("no documents and no error")
			}
			d := r.docs[0]
			if tc.invalid {
				if d.Object != nil || len(d.Errs) == 0 {
					t.Fatalf("alias bomb decoded: Object=%v errs=%v", d.Object != nil, d.Err())
				}
				for _, e := range d.Errs {
					if e.File != "bomb.yaml" || e.Line <= 0 {
						t.Errorf("error without location: %#v", *e)
					}
				}
				return
			}
			if d.Object == nil {
				t.Fatalf("a bomb in status made the spec invalid: %v", d.Err())
			}
			if d.HasStatus {
				t.Error("HasStatus for a status that is an alias bomb")
			}
		})
	}
}

// strictConfig is a settings-file shape for DecodeStrict: nested structs,
// maps, slices and pointers, and a recursive type.
type strictConfig struct {
	Name    string            `json:"name"`
	Port    int               `json:"port,omitempty"`
	Ratio   float64           `json:"ratio,omitempty"`
	Enabled *bool             `json:"enabled,omitempty"`
	Timeout *strictDuration   `json:"timeout,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Server  *strictServer     `json:"server,omitempty"`
	Servers []strictServer    `json:"servers,omitempty"`
	ByName  map[string]*strictServer
	Extra   any         `json:"extra,omitempty"`
	Tree    *strictNode `json:"tree,omitempty"`
	Hidden  string      `json:"-"`
	Limits  struct {
		Max uint8 `json:"max"`
	} `json:"limits,omitempty"`
}

type strictServer struct {
	Address string `json:"address"`
	Weights []int  `json:"weights,omitempty"`
}

type strictNode struct {
	Value    string        `json:"value"`
	Next     *strictNode   `json:"next,omitempty"`
	Children []*strictNode `json:"children,omitempty"`
}

// strictDuration is a json.Unmarshaler, like metav1.Duration.
type strictDuration struct{ time.Duration }

func (d *strictDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	d.Duration = v
	return err
}

func TestDecodeStrict(t *testing.T) {
	tests := map[string]struct {
		src  string
		want strictConfig
		errs []wantErr
	}{
		"empty file":    {src: ""},
		"only comments": {src: "# nothing\n"},
		"full": {
			src: lines(
				"name: n",
				"port: 8080",
				"ratio: 0.5",
				"enabled: false",
				"timeout: 1m30s",
				"tags: [a, b]",
				"env: {A: x}",
				"server: {address: \"h:1\", weights: [1, 2]}",
				"servers:",
				"- address: h:2",
				"ByName:",
				"  s: {address: h:3}",
				"extra: {k: [1, two, {x: true}]}",
				"tree: {value: root, next: {value: n1}, children: [{value: c1}, ~]}",
				"limits: {max: 255}",
			),
			want: strictConfig{
				Name: "n", Port: 8080, Ratio: 0.5, Enabled: ptr(false), Timeout: &strictDuration{90 * time.Second},
				Tags: []string{"a", "b"}, Env: map[string]string{"A": "x"},
				Server:  &strictServer{Address: "h:1", Weights: []int{1, 2}},
				Servers: []strictServer{{Address: "h:2"}},
				ByName:  map[string]*strictServer{"s": {Address: "h:3"}},
				Extra:   map[string]any{"k": []any{1, "two", map[string]any{"x": true}}},
				Tree:    &strictNode{Value: "root", Next: &strictNode{Value: "n1"}, Children: []*strictNode{{Value: "c1"}, nil}},
				Limits: struct {
					Max uint8 `json:"max"`
				}{255},
			},
		},
		"anchors and aliases are fine": {
			src:  lines("server: &s {address: h:1}", "servers: [*s, *s]"),
			want: strictConfig{Server: &strictServer{Address: "h:1"}, Servers: []strictServer{{Address: "h:1"}, {Address: "h:1"}}},
		},
		"unknown field":                 {src: lines("name: n", "prot: 1"), errs: []wantErr{{2, "prot", `did you mean "port"?`}}},
		"json dash field":               {src: lines("Hidden: x"), errs: []wantErr{{1, "Hidden", "unknown field"}}},
		"nested unknown":                {src: lines("server:", "  adress: x"), errs: []wantErr{{2, "server.adress", `did you mean "address"?`}}},
		"wrong type":                    {src: lines("port: eighty"), errs: []wantErr{{1, "port", `must be an integer, not "eighty"`}}},
		"uint overflow":                 {src: lines("limits: {max: 256}"), errs: []wantErr{{1, "limits.max", "out of range"}}},
		"uint negative":                 {src: lines("limits: {max: -1}"), errs: []wantErr{{1, "limits.max", "non-negative integer"}}},
		"float is string":               {src: lines("ratio: '0.5'"), errs: []wantErr{{1, "ratio", "must be a number"}}},
		"float NaN":                     {src: lines("ratio: .nan"), errs: []wantErr{{1, "ratio", "must be a number"}}},
		"bad duration":                  {src: lines("name: x", "timeout: later"), errs: []wantErr{{2, "timeout", `invalid duration "later"`}}},
		"duplicate key":                 {src: lines("name: a", "name: b"), errs: []wantErr{{2, "name", "duplicate key"}}},
		"list element":                  {src: lines("servers:", "- address: a", "- address: [b]"), errs: []wantErr{{3, "servers[1].address", "must be a string, not a list"}}},
		"map element":                   {src: lines("ByName:", "  a: {weights: [1, x]}"), errs: []wantErr{{2, "ByName[a].weights[1]", "must be an integer"}}},
		"not a mapping":                 {src: "just words\n", errs: []wantErr{{1, "", `must be a mapping, not "just words"`}}},
		"top-level list":                {src: "- a\n", errs: []wantErr{{1, "", "must be a mapping, not a list"}}},
		"syntax error":                  {src: lines("name: n", "port: [1", "ratio: 1"), errs: []wantErr{{2, "", "invalid YAML: did not find expected ',' or ']'"}}},
		"syntax error on the only line": {src: "name: [\n", errs: []wantErr{{1, "", "invalid YAML: did not find expected node content"}}},
		"syntax error at the end":       {src: lines("name: [x", "port: 1"), errs: []wantErr{{2, "", "invalid YAML: did not find expected ',' or ']'"}}},
		"non-string key":                {src: lines("env:", "  [a]: b"), errs: []wantErr{{2, "env", "keys must be strings"}}},
		"alias loop":                    {src: lines("tree: &t {value: x, next: *t}"), errs: []wantErr{{1, "tree.next", "alias *t refers to its own anchor"}}},
		"alias loop via alias":          {src: lines("server: &t {address: x}", "tree: &u {next: {next: *u}}"), errs: []wantErr{{2, "tree.next.next", "alias *u refers to its own anchor"}}},
		"alias loop list":               {src: lines("tree: &t {value: x, children: [*t, *t]}"), errs: []wantErr{{1, "tree.children[0]", "alias *t refers to its own anchor"}, {1, "tree.children[1]", "alias *t refers to its own anchor"}}},
		"too deeply":                    {src: "tree: " + strings.Repeat("{next: ", 600) + "{}" + strings.Repeat("}", 600) + "\n", errs: []wantErr{{1, "tree" + strings.Repeat(".next", 499), "nested too deeply"}}},
		"only first doc":                {src: lines("name: a", "---", "name: b"), want: strictConfig{Name: "a"}},
		"null leaves zero":              {src: lines("name: ~", "server: null"), want: strictConfig{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got strictConfig
			err := DecodeStrict("conf.yaml", []byte(tc.src), &got)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("DecodeStrict: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("DecodeStrict mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeStrict succeeded: %+v", got)
			}
			checkErrs(t, "conf.yaml", unwrapErrors(t, err), tc.errs)
		})
	}
}

// unwrapErrors returns the *Error values of an error from DecodeStrict.
func unwrapErrors(t *testing.T, err error) []*Error {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*Error, 0, len(errs))
	for _, e := range errs {
		fe, ok := e.(*Error)
		if !ok {
			t.Fatalf("error %T %v is not an *Error", e, e)
		}
		out = append(out, fe)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestIdentified(t *testing.T) {
	tests := map[string]struct {
		kind, name string
		want       bool
	}{
		"known":         {"Process", "x", true},
		"no name":       {"Process", "", false},
		"no kind":       {"", "x", false},
		"unknown kind":  {"Pod", "x", false},
		"alias of kind": {"proc", "x", false},
		"lower case":    {"process", "x", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := &Document{Kind: tc.kind, Name: tc.name}
			if got := d.Identified(); got != tc.want {
				t.Errorf("Identified() = %v, want %v", got, tc.want)
			}
		})
	}
}

// Bytes the YAML reader refuses before parsing still get a line: that of
// the first bad byte.
func TestSyntaxErrorWithoutPositionGetsALine(t *testing.T) {
	for name, tc := range map[string]struct {
		data string
		line int
	}{
		"invalid UTF-8": {"kind: Process\nmetadata:\n  name: \xff\xfe\n", 3},
		"NUL":           {"kind: Process\n\x00\n", 2},
		"garbage":       {"\x89PNG\x00\x01", 1},
	} {
		_, err := DecodeFile("f.yaml", []byte(tc.data))
		var e *Error
		if !errors.As(err, &e) || e.Line != tc.line {
			t.Errorf("%s: error %v, want line %d", name, err, tc.line)
		}
	}
}
