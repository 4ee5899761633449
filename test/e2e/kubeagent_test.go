// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// kubeProcess is a Process for the API server: in namespace ns, for host
// (or a template, with hosts set and host empty), running sleep secs,
// marked with dir so the test's cleanup finds it.
func kubeProcess(name, ns, host, hosts, dir string, secs int) string {
	meta := fmt.Sprintf("{name: %s, namespace: %s", name, ns)
	if host != "" {
		meta += fmt.Sprintf(", labels: {reconciled.dev/host: %s}", host)
	}
	if hosts != "" {
		meta += fmt.Sprintf(", annotations: {reconciled.dev/hosts: %q}", hosts)
	}
	return fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: %s}\nspec:\n  command: [/bin/sh, -c, \"exec sleep %d\"]\n  env: {E2E_DIR: %q}\n", meta, secs, dir)
}

// Three agents of one real kube-apiserver, each with credentials for its
// own namespace only (deploy/kube), one of them also the hub: each runs
// only its own objects and reports status, events, its Lease and its Host;
// a template runs on the hosts its selector matches and follows their
// labels; a host cannot touch another's objects; while the API server is
// away everything keeps running, a restarted agent runs its checkpoint,
// and changes made after it returns converge; a dead agent's Host goes
// NotReady when its Lease expires.
func TestKubeAgents(t *testing.T) {
	k := newKubeAPI(t, "reconciled:host:a@reconciled:agents,reconciled:hubs", "reconciled:host:b@reconciled:agents,reconciled:hubs", "reconciled:host:c@reconciled:agents")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	k.must("apply", "-f", filepath.Join(root, "deploy", "crds"))
	k.must("wait", "--for", "condition=established", "--timeout", "60s", "crd", "--all")
	k.must("apply", "-f", filepath.Join(root, "deploy", "kube", "agents.yaml"), "-f", filepath.Join(root, "deploy", "kube", "hub.yaml"))
	perHost, err := os.ReadFile(filepath.Join(root, "deploy", "kube", "host-web1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"a", "b", "c"}
	agents := map[string]*env{}
	for _, h := range hosts {
		k.must("apply", "-f", writeTemp(t, "rbac-"+h+".yaml", strings.ReplaceAll(string(perHost), "web1", h)))
	}
	for _, h := range hosts {
		args := []string{"--kube", k.kubeconfig("reconciled:host:" + h), "--host", h, "--kube-namespace", "host-" + h}
		if h != "c" {
			args = append(args, "--kube-hub") // a and b stand for the hub, one leads
		}
		agents[h] = newEnv(t, args...)
		agents[h].start()
	}
	// Each host's own Process, created with kubectl.
	for _, h := range hosts {
		k.must("apply", "-f", writeTemp(t, "p-"+h+".yaml", kubeProcess("p-"+h, "host-"+h, h, "", agents[h].dir, 1000)))
	}
	pids := map[string]int{}
	for _, h := range hosts {
		p := agents[h].waitProcess("p-"+h, "running from the API server", func(p process) bool { return p.Status.Phase == "Running" && p.Status.Pid > 0 })
		pids[h] = p.Status.Pid
		if !strings.HasPrefix(p.Metadata.Annotations["reconciled.dev/source"], "kube:host-"+h+"/processes/p-"+h) {
			t.Errorf("p-%s source: %v", h, p.Metadata.Annotations)
		}
	}
	for _, h := range hosts {
		for _, other := range hosts {
			if other != h {
				if _, ok := agents[h].getProcess("p-" + other); ok {
					t.Errorf("host %s runs p-%s", h, other)
				}
			}
		}
	}
	// Local files beside the API server: a's own file runs too, and stays
	// its own (nothing of it goes to the API server).
	agents["a"].write("local.yaml", sleeper(agents["a"], "local-a", ""))
	agents["a"].waitProcess("local-a", "running from a local file", func(p process) bool { return p.Status.Phase == "Running" })
	// Status and Hosts through the API server.
	eventuallyKube := func(what string, args []string, want string) {
		t.Helper()
		var out string
		waitfor.Within(t, time.Minute, what, func() bool {
			out, _ = k.kubectl("admin", args...)
			return strings.Contains(out, want)
		})
	}
	for _, h := range hosts {
		count := 1 // the resources a Host reports: its objects and local files
		if h == "a" {
			count = 2 // local-a
		}
		eventuallyKube("p-"+h+" status in the API", []string{"get", "process", "p-" + h, "-n", "host-" + h, "-o", "jsonpath={.status.phase} {.status.pid}"},
			fmt.Sprintf("Running %d", pids[h]))
		eventuallyKube("Host "+h+" Ready", []string{"get", "host", h, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.resources.Process} {.status.namespace}`},
			fmt.Sprintf("True %d host-%s", count, h))
	}
	if out := k.must("get", "processes", "-A"); !strings.Contains(out, "host-b") || !strings.Contains(out, "Running") || strings.Contains(out, "local-a") {
		t.Errorf("kubectl get processes -A:\n%s", out)
	}
	if out, _ := k.kubectl("admin", "get", "lease", "a", "-n", "reconciled-system", "-o", "jsonpath={.spec.holderIdentity}"); out != "a" {
		t.Errorf("Lease of a: %q", out)
	}

	// One hub leads at a time.
	if leaders := strings.Count(agents["a"].log.String()+agents["b"].log.String(), "leading the hub"); leaders != 1 {
		t.Errorf("%d hubs led (want one of a and b)", leaders)
	}
	// RBAC: c's credentials (an agent that is not a hub) reach its own
	// namespace only.
	if out, ok := k.kubectl("reconciled:host:c", "get", "processes", "-n", "host-c", "-o", "name"); !ok || !strings.Contains(out, "p-c") {
		t.Errorf("c reading its own objects: %s", out)
	}
	if out, ok := k.kubectl("reconciled:host:c", "get", "processes", "-n", "host-a"); ok || !strings.Contains(out, "Forbidden") {
		t.Errorf("c reading a's objects: %v %s", ok, out)
	}
	if out, ok := k.kubectl("reconciled:host:c", "get", "processes", "-n", "host-b"); ok || !strings.Contains(out, "Forbidden") {
		t.Errorf("c reading b's objects: %v %s", ok, out)
	}
	if out, ok := k.kubectl("reconciled:host:c", "apply", "-f", writeTemp(t, "evil.yaml", kubeProcess("evil", "host-a", "a", "", agents["a"].dir, 1))); ok || !strings.Contains(out, "Forbidden") {
		t.Errorf("c writing into a's namespace: %v %s", ok, out)
	}
	if out, ok := k.kubectl("reconciled:host:c", "patch", "host", "a", "--subresource", "status", "--type", "merge", "-p", `{"status":{"phase":"Evil"}}`); ok || !strings.Contains(out, "Forbidden") {
		t.Errorf("c writing a's Host: %v %s", ok, out)
	}

	// Fan-out: a template for role=web runs on a and b, follows b out of
	// the role, and goes with its template.
	k.must("label", "host", "a", "b", "role=web")
	k.must("label", "host", "c", "role=db")
	k.must("create", "namespace", "fleet")
	k.must("label", "namespace", "fleet", "reconciled.dev/templates=true")
	// A template outside the namespaces labelled for templates is not
	// expanded: writing one host's namespace reaches no other host.
	k.must("apply", "-f", writeTemp(t, "sneaky.yaml", kubeProcess("sneaky", "host-c", "", "role=web", agents["a"].dir, 1000)))
	k.must("apply", "-f", writeTemp(t, "web.yaml", kubeProcess("web", "fleet", "", "role=web", agents["a"].dir, 1000)))
	for _, h := range []string{"a", "b"} {
		agents[h].waitProcess("web-"+h, "the template's copy running", func(p process) bool { return p.Status.Phase == "Running" })
	}
	eventuallyKube("the template counts its copies", []string{"get", "process", "web", "-n", "fleet", "-o", "jsonpath={.status.hosts.ready}/{.status.hosts.total}"}, "2/2")
	if out := k.must("get", "processes", "-A", "-o", "name"); strings.Contains(out, "sneaky-") {
		t.Errorf("a template outside the template namespaces was copied:\n%s", out)
	}
	// A typo in the selector keeps the copies running and says so.
	k.must("annotate", "process", "web", "-n", "fleet", "--overwrite", "reconciled.dev/hosts=role in web")
	eventuallyKube("the template reports its selector", []string{"get", "process", "web", "-n", "fleet", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`}, "InvalidSpec")
	for _, h := range []string{"a", "b"} {
		if p, ok := agents[h].getProcess("web-" + h); !ok || p.Status.Phase != "Running" {
			t.Errorf("web-%s after a typo in the template's selector: %v %+v", h, ok, p.Status)
		}
	}
	k.must("annotate", "process", "web", "-n", "fleet", "--overwrite", "reconciled.dev/hosts=role=web")
	if _, ok := agents["c"].getProcess("web-c"); ok {
		t.Error("c (role=db) runs the web template")
	}
	k.must("label", "host", "b", "role=db", "--overwrite")
	agents["b"].eventually("web-b gone from b", func() bool { _, ok := agents["b"].getProcess("web-b"); return !ok })
	eventuallyKube("the template counts one copy", []string{"get", "process", "web", "-n", "fleet", "-o", "jsonpath={.status.hosts.ready}/{.status.hosts.total}"}, "1/1")
	k.must("delete", "process", "web", "-n", "fleet")
	agents["a"].eventually("web-a gone from a", func() bool { _, ok := agents["a"].getProcess("web-a"); return !ok })
	waitfor.Within(t, time.Minute, "no copies left after the template went", func() bool {
		return strings.TrimSpace(k.must("get", "processes", "-A", "-l", "reconciled.dev/template", "-o", "name")) == ""
	})

	// Partition: the API server goes away; nothing stops, a restarted
	// agent runs its checkpoint.
	k.stop()
	agents["b"].stop(syscall.SIGTERM)
	agents["b"].start()
	p := agents["b"].waitProcess("p-b", "from the checkpoint", func(p process) bool { return p.Status.Phase == "Running" })
	if p.Status.Pid != pids["b"] {
		t.Errorf("p-b pid %d after the restart, was %d", p.Status.Pid, pids["b"])
	}
	if out := agents["b"].ctl("get", "sources"); !strings.Contains(out, "checkpoint") {
		t.Errorf("get sources while the API server is away:\n%s", out)
	}
	for _, h := range hosts {
		if p, ok := agents[h].getProcess("p-" + h); !ok || p.Status.Pid != pids[h] || !alive(pids[h]) {
			t.Errorf("p-%s during the partition: %v %+v", h, ok, p.Status)
		}
	}
	k.start()
	k.must("patch", "process", "p-b", "-n", "host-b", "--type", "merge", "-p", `{"spec":{"command":["/bin/sh","-c","exec sleep 1001"]}}`)
	agents["b"].waitProcess("p-b", "restarted with the change made after the partition", func(p process) bool {
		return p.Status.Pid != pids["b"] && p.Status.Pid != 0 && strings.Contains(cmdline(p.Status.Pid), "sleep 1001")
	})
	eventuallyKube("the restart's event in the API", []string{"get", "events", "-n", "host-b", "--field-selector", "involvedObject.name=p-b", "-o", "jsonpath={.items[*].reason}"}, "SpecChanged")
	if out := k.must("describe", "process", "p-b", "-n", "host-b"); !strings.Contains(out, "SpecChanged") {
		t.Errorf("describe lacks the event:\n%s", out)
	}
	for _, h := range []string{"a", "c"} {
		if p, ok := agents[h].getProcess("p-" + h); !ok || p.Status.Pid != pids[h] {
			t.Errorf("p-%s after the partition: %v %+v", h, ok, p.Status)
		}
	}

	// A dead agent: its Lease expires and the hub marks its Host.
	agents["c"].stop(syscall.SIGKILL)
	var out string
	waitfor.Within(t, 3*time.Minute, "Host c NotReady after its Lease expired", func() bool {
		out, _ = k.kubectl("admin", "get", "host", "c", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}`)
		return out == "False LeaseExpired"
	})
	if out, _ := k.kubectl("admin", "get", "host", "a", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
		t.Errorf("Host a: %s", out)
	}
}
