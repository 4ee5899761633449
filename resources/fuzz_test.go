// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package resources

import (
	"errors"
	"testing"
)

// fuzzSeeds are realistic resource files: every kind, several documents,
// comments, status blocks, and a few broken ones.
var fuzzSeeds = []string{
	`# The quickstart: one supervised program.
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: ticker
  labels: {app: quickstart}
spec:
  command: ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 3; done"]
  restartPolicy: Always
`,
	`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata:
  name: pydecnet
  generation: 3
  labels: {site: hecnet}
  annotations: {reconciled.dev/restartedAt: "2026-11-21T10:00:00Z"}
spec:
  command: ["/opt/hecnet/bin/pydecnet", "/etc/decnet/theark.conf"]
  workingDir: /var/lib/decnet
  env: {PYTHONUNBUFFERED: "1"}
  user: decnet
  restartPolicy: OnFailure
  backoff: {initial: 100ms, max: 1m, resetAfter: 10m}
  stopSignal: SIGTERM
  stopTimeout: 10s
  stdout: /var/log/decnet/launch-info.log
  removeBeforeStart: ["/tmp/decnetapi.sock"]
  restartOnChange: ["/etc/decnet/theark.conf"]
  readiness:
    notify: true
  watchdog: 30s
status:
  observedGeneration: 3
  phase: Running
  pid: 4242
  restarts: 3
  lastExit: {exitCode: 1, signal: "", finishedAt: "2026-11-21T10:00:00Z"}
  conditions:
  - type: Ready
    status: "True"
    reason: Running
    message: ""
    lastTransitionTime: "2026-11-21T10:00:00Z"
    observedGeneration: 3
`,
	`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: a2rtr}
spec:
  http:
    url: "http://localhost/api/circuits"
    unixSocket: /tmp/decnetapi.sock
    expectStatus: [200]
    expectBody: "A2RTR.*up"
  interval: 60s
  timeout: 5s
  failureThreshold: 2
  degradedLatency: 250ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: b}
spec: {icmp: {host: b.example.net}}
`,
	`apiVersion: reconciled.dev/v1alpha1
kind: Module
metadata: {name: sensor-reader}
spec:
  description: Reads the sensors
  exec: ["/opt/modules/sensor/venv/bin/python", "main.py"]
  workingDirectory: /opt/modules/sensor
  environment: {PYTHONUNBUFFERED: "1"}
  type: notify
  restart: on-failure
  restartSec: 5s
  after: [network.target, mosquitto.service]
  extra: {Service: {MemoryMax: 200M, CPUQuota: 50%, ExecStartPre: [/bin/true, /bin/true]}, Unit: {StartLimitBurst: 5}}
  enabled: true
  unitName: sensor-reader.service
`,
	`apiVersion: reconciled.dev/v1alpha1
kind: PiNode
metadata: {name: pi-10}
spec:
  mac: "dc:a6:32:01:02:03"
  ip: 172.16.7.10
  switch: {address: "172.16.7.129:161", port: 10, community: private}
  image: {url: "file:///srv/images/raspios-lite.img", sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
  installGeneration: 1
  power: On
status:
  phase: Installed
  installedGeneration: 1
  observedSwitchPort: 10
`,
	`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: ops-email}
spec:
  match:
    kinds: [Link, Process]
    names: ["a2rtr", "pydecnet*"]
    labels: {site: hecnet}
    severity: warning
  groupWait: 30s
  repeatInterval: 4h
  sendResolved: true
  receivers:
  - email:
      smarthost: smtp.example.net:587
      starttls: true
      from: alerts@example.net
      to: [ops@example.net]
  - webhook: {url: "http://127.0.0.1:9000/hook"}
  - alertmanager: {url: "http://127.0.0.1:9093"}
  - exec: {command: ["/usr/local/bin/page-me"]}
  - log: {}
`,
	// Several documents with empty ones and comments between.
	`# header
---
---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: a}
spec: {command: [/bin/true]}   # trailing
---
# only a comment
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: a}
spec: {tcp: {address: "127.0.0.1:700"}}
...
`,
	// Invalid documents: wrong types, unknown fields, duplicate keys.
	`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: Bad_Name}
spec:
  command: "ls"
  restartPolicy: 3
  stopTimeout: soon
  comand: [x]
  env: {A: 1, A: 2}
status: [garbage]
---
kind: Widget
metadata: {name: x}
---
- a
- list
`,
	// Not YAML at all.
	"apiVersion: reconciled.dev/v1alpha1\nkind: Process\nspec:\n  command: [ls\n\tuser: x\n",
	// Anchors, aliases and a merge key.
	`x: &cmd ["/bin/sleep", "1"]
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: &n alias}
spec:
  command: *cmd
  env: &e {A: *n}
  <<: {user: root}
status: &s {phase: Running, lastExit: *s}
`,
}

// FuzzDecodeFile checks that DecodeFile never panics, that every document
// is either a valid object or a list of located errors, and that decoding
// is deterministic.
func FuzzDecodeFile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	const file = "dir/fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := DecodeFile(file, data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("file error %T is not an *Error: %v", err, err)
			}
			if e.File != file || e.Line < 0 {
				t.Fatalf("file error not located: %#v", *e)
			}
			if docs != nil {
				t.Fatalf("documents returned with a file error")
			}
			return
		}
		for i, d := range docs {
			if d.File != file {
				t.Fatalf("document %d: File = %q", i, d.File)
			}
			if (d.Object != nil) == (len(d.Errs) > 0) {
				t.Fatalf("document %d: Object set = %v with %d errors: %v", i, d.Object != nil, len(d.Errs), d.Err())
			}
			if (d.Object == nil) != (d.Err() != nil) {
				t.Fatalf("document %d: Err() = %v with Object %v", i, d.Err(), d.Object != nil)
			}
			for _, e := range d.Errs {
				if e.File != file || e.Line < 0 || e.Message == "" {
					t.Fatalf("document %d: error not located: %#v", i, *e)
				}
				_ = e.Error()
			}
			if d.Object == nil {
				continue
			}
			if d.SpecHash == "" {
				t.Fatalf("document %d: valid without SpecHash", i)
			}
			if d.Object.GetTypeMeta().Kind != d.Kind || d.Object.GetObjectMeta().Name != d.Name || !d.Identified() {
				t.Fatalf("document %d: object %s/%s does not match %q/%q", i, d.Object.GetTypeMeta().Kind, d.Object.GetObjectMeta().Name, d.Kind, d.Name)
			}
			if errs := d.Object.Validate(); len(errs) > 0 {
				t.Fatalf("document %d: valid object fails validation: %v", i, errs)
			}
			if h := SpecHash(d.Object); h != d.SpecHash {
				t.Fatalf("document %d: SpecHash of the object %s != %s", i, h, d.SpecHash)
			}
		}
		// Determinism: the same input decodes the same way.
		again, err := DecodeFile(file, data)
		if err != nil || len(again) != len(docs) {
			t.Fatalf("second decode differs: %d documents, %v", len(again), err)
		}
		for i, d := range docs {
			a := again[i]
			if a.SpecHash != d.SpecHash || a.Line != d.Line || len(a.Errs) != len(d.Errs) || a.HasStatus != d.HasStatus {
				t.Fatalf("document %d decodes differently the second time", i)
			}
		}
	})
}

// fuzzConfig is a small settings-file shape for DecodeStrict with nested
// struct, map, slice, pointer, interface and json.Unmarshaler fields, and a
// recursive type.
type fuzzConfig struct {
	Name    string            `json:"name"`
	Port    int16             `json:"port,omitempty"`
	Size    uint32            `json:"size,omitempty"`
	Ratio   float32           `json:"ratio,omitempty"`
	On      *bool             `json:"on,omitempty"`
	Wait    *strictDuration   `json:"wait,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Server  *strictServer     `json:"server,omitempty"`
	Servers []strictServer    `json:"servers,omitempty"`
	ByName  map[string]*strictServer
	Any     any                  `json:"any,omitempty"`
	Anys    map[string][]any     `json:"anys,omitempty"`
	Tree    *strictNode          `json:"tree,omitempty"`
	Nested  map[string]fuzzInner `json:"nested,omitempty"`
}

type fuzzInner struct {
	Inner struct {
		Deep []map[string]*int `json:"deep"`
	} `json:"inner"`
}

// FuzzDecodeStrict checks that DecodeStrict never panics and reports only
// located *Error values.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		"",
		"# empty\n",
		"name: n\nport: 8080\nsize: 1\nratio: 0.5\non: true\nwait: 1m\ntags: [a, b]\nenv: {A: x}\n",
		"server: {address: \"h:1\", weights: [1, 2]}\nservers:\n- address: h:2\nByName:\n  s: {address: h:3}\n",
		"any: {k: [1, two, {x: true}], t: 2026-01-01}\nanys: {a: [1, null, [x]]}\n",
		"tree: {value: root, next: {value: n1}, children: [{value: c1}, ~]}\n",
		"tree: &t {value: x, next: *t, children: [*t]}\n",
		"nested: {a: {inner: {deep: [{x: 1, y: ~}]}}}\n",
		"name: [x\nport: 1\n",
		"port: 99999\nsize: -1\nratio: .nan\nname: 3\nprot: 1\nname: dup\n",
		"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nany: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
		"netboot:\n  interface: eth1\n  serverIP: 172.16.7.1\n",
		"any: !!binary aGVsbG8=\nname: !!str 1\ntags: !!seq [a]\nenv: !!map {a: !foo b}\nport: !!int 0x1F\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c fuzzConfig
		err := DecodeStrict("conf.yaml", data, &c)
		if err == nil {
			return
		}
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		if len(errs) == 0 {
			t.Fatal("empty error list")
		}
		for _, e := range errs {
			fe, ok := e.(*Error)
			if !ok {
				t.Fatalf("error %T is not an *Error: %v", e, e)
			}
			if fe.File != "conf.yaml" || fe.Line < 0 || fe.Message == "" {
				t.Fatalf("error not located: %#v", *fe)
			}
		}
	})
}
