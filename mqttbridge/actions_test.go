// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// The bridge on a real store and writer, as the daemon wires it: commands
// become files under <dir>/api/, and the store's changes become statuses.
func TestWriterActionsWithStore(t *testing.T) {
	dir := t.TempDir()
	store, err := resources.NewStore(resources.Options{Dir: dir, StateDir: t.TempDir(), Status: resources.StatusNone, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	git := filepath.Join(dir, "git.yaml")
	if err := os.WriteFile(git, []byte("apiVersion: reconciled.dev/v1alpha1\nkind: Module\nmetadata: {name: fromgit}\nspec: {exec: [/bin/true]}\n---\n"+
		"apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: web}\nspec: {command: [/bin/sleep, \"100\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var restarted []string
	restarter := func(kind string) func(string) error {
		return func(name string) error {
			mu.Lock()
			defer mu.Unlock()
			restarted = append(restarted, kind+"/"+name)
			return nil
		}
	}
	actions := WriterActions{Writer: apply.New(store), Restarters: map[string]func(string) error{
		v1alpha1.KindProcess: restarter(v1alpha1.KindProcess), v1alpha1.KindModule: restarter(v1alpha1.KindModule)}}
	b, err := New(Options{Broker: "x", TopicPrefix: "rc", Log: testr.New(t)}, actions, store)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{}
	runLoops(t, b, c)
	b.out.connected()

	errorsSeen := func() []string {
		var out []string
		for _, p := range c.on("rc/error") {
			var r ErrorReport
			json.Unmarshal([]byte(p.Payload), &r)
			out = append(out, r.Error)
		}
		return out
	}
	spec := func(name string) v1alpha1.ModuleSpec {
		o, ok := store.Get(v1alpha1.KindModule, name)
		if !ok {
			return v1alpha1.ModuleSpec{}
		}
		return o.(*v1alpha1.Module).Spec
	}

	b.receive(pubOf("rc/command/module/sensor/create", `{"exec": ["/usr/bin/python3", "main.py"], "description": "Reads the sensors"}`))
	waitfor.Within(t, wait, "the module's status", func() bool { _, ok := c.last("rc/status/module/sensor"); return ok })
	if got := spec("sensor"); got.Description != "Reads the sensors" || got.State != "Running" {
		t.Errorf("created module's spec = %+v", got)
	}
	file := actions.Writer.Path("Module", "sensor")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("create wrote no file: %v", err)
	}

	b.receive(pubOf("rc/command/module/sensor/stop", ""))
	waitfor.Within(t, wait, "spec.state Stopped", func() bool { return spec("sensor").State == "Stopped" })
	data, _ := os.ReadFile(file)
	if !strings.Contains(string(data), "state: Stopped") || !strings.Contains(string(data), "description: Reads the sensors") {
		t.Errorf("file after stop:\n%s", data)
	}
	b.receive(pubOf("rc/command/module/sensor/start", ""))
	waitfor.Within(t, wait, "spec.state Running", func() bool { return spec("sensor").State == "Running" })
	b.receive(pubOf("rc/command/module/sensor/restart", ""))
	waitfor.Within(t, wait, "the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(restarted) == 1 && restarted[0] == "Module/sensor"
	})

	// Refusals, each reported once and changing nothing.
	gitBefore, _ := os.ReadFile(git)
	for _, topic := range []string{
		"rc/command/module/fromgit/stop", // defined in git
		"rc/command/process/web/stop",    // a Process has no spec.state
		"rc/command/module/fromgit/remove",
	} {
		b.receive(pubOf(topic, ""))
	}
	b.receive(pubOf("rc/command/module/bad/create", `{"exec": [], "state": "Paused"}`))
	waitfor.Within(t, wait, "four error reports", func() bool { return len(errorsSeen()) == 4 })
	errs := errorsSeen()
	for i, want := range []string{"is defined in " + git, "a Process does not have", "is defined in " + git, `module "bad" is invalid`} {
		if !strings.Contains(errs[i], want) {
			t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want)
		}
	}
	if now, _ := os.ReadFile(git); string(now) != string(gitBefore) {
		t.Errorf("refused commands changed git.yaml:\n%s", now)
	}
	if store.Known("Module", "bad") {
		t.Error("an invalid create reached the store")
	}

	b.receive(pubOf("rc/command/module/sensor/remove", ""))
	waitfor.Within(t, wait, "the file to go", func() bool { _, err := os.Stat(file); return errors.Is(err, os.ErrNotExist) })
}
