// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/reconciled/reconciled/test/fixtures/kubetest"
)

var processes = schema.GroupVersionResource{Group: "reconciled.dev", Version: "v1alpha1", Resource: "processes"}

// kubeAgents measures the Kubernetes node-agent mode against a real
// kube-apiserver and etcd (test/fixtures/kubetest): with 50 real agents
// (one namespace each, one Process each), a spec change made through the
// API until the host runs it and its status says so (p50/p99, beside the
// API server's own write-to-watch time); the API server's CPU, memory and
// connections per agent, idle, for the 50 real agents and for 1,000
// simulated ones (six watches and a Lease renewed every 10 s each, what an
// agent holds); and one agent's idle CPU in kube mode and in file mode,
// side by side.
func (b *bench) kubeAgents() []row {
	if _, err := kubetest.Bin(); err != nil {
		logf("kube: %v; no rows", err)
		return nil
	}
	dir, err := os.MkdirTemp(b.work, "kube-")
	check(err)
	api := kubetest.Start(&onFatal)
	defer api.Close()
	must := func(args ...string) {
		if out, err := api.Kubectl("admin", args...); err != nil {
			fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	must("apply", "-f", "deploy/crds")
	must("wait", "--for", "condition=established", "--timeout", "60s", "crd", "--all")
	n, sims := scale(50), scale(1000)
	var ns strings.Builder
	ns.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: reconciled-system}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: sim}\n")
	for i := range n {
		fmt.Fprintf(&ns, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: host-%02d}\n", i)
	}
	nsFile := filepath.Join(dir, "namespaces.yaml")
	check(os.WriteFile(nsFile, []byte(ns.String()), 0o644))
	must("apply", "-f", nsFile)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	check(api.Kubeconfig("admin", kubeconfig))
	cfg := &rest.Config{Host: api.URL, BearerToken: api.Token("admin"), TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 1000, Burst: 2000}
	dyn, err := dynamic.NewForConfig(cfg)
	check(err)
	apiPid := api.APIServerPid()
	idle := 30 * time.Second
	if *quick {
		idle = 10 * time.Second
	}
	// The API server alone, idle.
	cpu0, rss0, t0 := cpuSecondsOf(apiPid), rssMiBOf(apiPid), time.Now()
	time.Sleep(idle)
	baseCPU := (cpuSecondsOf(apiPid) - cpu0) / time.Since(t0).Seconds()

	// One agent in kube mode and one daemon in file mode, ten Processes
	// each, idle side by side.
	kdir, kstate := b.newDirs("kube-agent")
	kd := b.startDaemon("", kstate, "--kube", kubeconfig, "--host", "solo", "--kube-namespace", "host-00")
	fdir, fstate := b.newDirs("kube-filemode")
	var files strings.Builder
	for i := range 10 {
		fmt.Fprintf(&files, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: solo-%d}\nspec: {command: [/bin/sleep, \"3600\"]}\n", i)
		obj := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: solo-%d, namespace: host-00, labels: {reconciled.dev/host: solo}}\nspec: {command: [/bin/sleep, \"3600\"]}\n", i)
		f := filepath.Join(kdir, fmt.Sprintf("solo-%d.yaml", i))
		check(os.WriteFile(f, []byte(obj), 0o644))
	}
	must("apply", "-f", kdir)
	check(os.WriteFile(filepath.Join(fdir, "solo.yaml"), []byte(files.String()), 0o644))
	fd := b.startDaemon(fdir, fstate)
	kd.waitReady()
	fd.waitReady()
	waitRunning(dyn, "host-00", 10)
	time.Sleep(5 * time.Second) // the first statuses written
	kc0, fc0, t0 := kd.cpuSeconds(), fd.cpuSeconds(), time.Now()
	time.Sleep(idle)
	secs := time.Since(t0).Seconds()
	kubeIdle, fileIdle := (kd.cpuSeconds()-kc0)/secs, (fd.cpuSeconds()-fc0)/secs
	kd.stop()
	fd.stop()
	logf("kube: one agent idle %.3f%% of a core in kube mode, %.3f%% in file mode (10 Processes each)", 100*kubeIdle, 100*fileIdle)

	// 50 real agents, one Process each.
	agents := make([]*daemon, n)
	for i := range n {
		_, state := b.newDirs(fmt.Sprintf("agent-%02d", i))
		agents[i] = b.startDaemon("", state, "--kube", kubeconfig, "--host", fmt.Sprintf("h%02d", i), "--kube-namespace", fmt.Sprintf("host-%02d", i))
		obj := fmt.Sprintf("apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: p, namespace: host-%02d, labels: {reconciled.dev/host: h%02d}}\nspec: {command: [/bin/sleep, \"3600\"]}\n", i, i)
		f := filepath.Join(dir, fmt.Sprintf("p-%02d.yaml", i))
		check(os.WriteFile(f, []byte(obj), 0o644))
	}
	defer func() {
		for _, d := range agents {
			d.stop()
		}
	}()
	must("apply", "-f", dir, "--recursive=false")
	for i := range n {
		waitRunning(dyn, fmt.Sprintf("host-%02d", i), 1)
	}
	time.Sleep(5 * time.Second)
	cpu0, t0 = cpuSecondsOf(apiPid), time.Now()
	time.Sleep(idle)
	realCPU := (cpuSecondsOf(apiPid) - cpu0) / time.Since(t0).Seconds()
	realRSS, realConns := rssMiBOf(apiPid), connsTo(api.URL)
	perReal := (realCPU - baseCPU) / float64(n)
	logf("kube: API server idle %.2f%% of a core alone, %.2f%% with %d agents (%.3f%% each); RSS %.0f -> %.0f MiB; %d connections",
		100*baseCPU, 100*realCPU, n, 100*perReal, rss0, realRSS, realConns)

	// Convergence: every Process's command changed at once, five rounds.
	var took, floor []time.Duration
	for round := 1; round <= 5; round++ {
		t, f := converge(dyn, n, 3600+round)
		took, floor = append(took, t...), append(floor, f...)
	}
	logf("kube: change -> running on its host -> status in the API, %d agents: p50 %s p99 %s; the API server's write -> watch event p50 %s p99 %s",
		n, ms(percentile(took, 0.5)), ms(percentile(took, 0.99)), ms(percentile(floor, 0.5)), ms(percentile(floor, 0.99)))
	for _, d := range agents {
		d.stop()
	}

	// 1,000 simulated agents: six watches and a Lease each.
	cpu0, t0 = cpuSecondsOf(apiPid), time.Now()
	time.Sleep(idle)
	afterReal := (cpuSecondsOf(apiPid) - cpu0) / time.Since(t0).Seconds()
	rss1 := rssMiBOf(apiPid)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range sims {
		wg.Add(1)
		go func() { defer wg.Done(); simulateAgent(ctx, cfg, fmt.Sprintf("sim%04d", i)) }()
	}
	// Every simulated agent has created its Lease (it starts its watches
	// first), then a moment for the last watches to open.
	client, err := kubernetes.NewForConfig(cfg)
	check(err)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		list, err := client.CoordinationV1().Leases("reconciled-system").List(context.Background(), metav1.ListOptions{})
		n := 0
		if err == nil {
			for _, l := range list.Items {
				if strings.HasPrefix(l.Name, "sim") {
					n++
				}
			}
		}
		if n >= sims {
			time.Sleep(2 * time.Second)
			break
		}
		if time.Now().After(deadline) {
			fatalf("kube: %d of %d simulated agents have a Lease after 3 minutes", n, sims)
		}
	}
	cpu0, t0 = cpuSecondsOf(apiPid), time.Now()
	time.Sleep(idle)
	simCPU := (cpuSecondsOf(apiPid) - cpu0) / time.Since(t0).Seconds()
	simRSS, simConns := rssMiBOf(apiPid), connsTo(api.URL)
	cancel()
	wg.Wait()
	perSim := (simCPU - afterReal) / float64(sims)
	perSimRSS := (simRSS - rss1) / float64(sims)
	logf("kube: %d simulated agents: API server %.2f%% of a core (%.4f%% each), RSS %.0f -> %.0f MiB (%.2f MiB each), %d connections",
		sims, 100*simCPU, 100*perSim, rss1, simRSS, perSimRSS, simConns)
	return []row{
		{what: fmt.Sprintf("kube: object changed -> running on its host -> status in the API, %d agents, p50 / p99", n),
			ours:  ms(percentile(took, 0.5)) + " / " + ms(percentile(took, 0.99)),
			peer:  ms(percentile(floor, 0.5)) + " / " + ms(percentile(floor, 0.99)) + " API write->watch",
			ratio: fmt.Sprintf("%.1fx", float64(percentile(took, 0.99))/float64(max(percentile(floor, 0.99), time.Microsecond)))},
		{what: fmt.Sprintf("kube: API server CPU per agent, idle (%d real / %d simulated)", n, sims),
			ours: fmt.Sprintf("%.3f%% / %.4f%% of a core", 100*perReal, 100*perSim),
			peer: fmt.Sprintf("x5,000 nodes: %.1f / %.1f cores", 5000*perReal, 5000*perSim)},
		{what: fmt.Sprintf("kube: API server memory per agent (%d simulated), connections", sims),
			ours: fmt.Sprintf("%.2f MiB, %d conns (%d real: %d)", perSimRSS, simConns, n, realConns)},
		{what: "kube: one agent idle CPU, 10 Processes, kube mode vs file mode",
			ours: fmt.Sprintf("%.3f%% of a core", 100*kubeIdle), peer: fmt.Sprintf("%.3f%% file mode", 100*fileIdle),
			ratio: fmt.Sprintf("%.1fx", kubeIdle/max(fileIdle, 1e-6))},
	}
}

// waitRunning waits until n Processes of namespace ns report Running
// through the API server.
func waitRunning(dyn dynamic.Interface, ns string, n int) {
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		list, err := dyn.Resource(processes).Namespace(ns).List(context.Background(), metav1.ListOptions{})
		running := 0
		if err == nil {
			for _, it := range list.Items {
				if phase, _, _ := unstructured.NestedString(it.Object, "status", "phase"); phase == "Running" {
					running++
				}
			}
		}
		if running >= n {
			return
		}
		if time.Now().After(deadline) {
			fatalf("kube: %d of %d Processes Running in %s after 3 minutes", running, n, ns)
		}
	}
}

// converge changes the command of Process p in each of n namespaces at
// once and returns, per object, the time until the API server shows it
// Running with a new pid for the new generation, and the time until the
// harness's own watch saw the change itself (the API server's floor).
func converge(dyn dynamic.Interface, n, secs int) (took, floor []time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := dyn.Resource(processes).Namespace("").Watch(ctx, metav1.ListOptions{LabelSelector: "reconciled.dev/host"})
	check(err)
	defer func() { w.Stop() }()
	type state struct {
		start, seen, done time.Time
		gen0, pid         int64  // before the change
		last              string // what the watch showed last
	}
	var mu sync.Mutex
	states := map[string]*state{}
	for i := range n {
		ns := fmt.Sprintf("host-%02d", i)
		cur, err := dyn.Resource(processes).Namespace(ns).Get(ctx, "p", metav1.GetOptions{})
		check(err)
		pid, _, _ := unstructured.NestedInt64(cur.Object, "status", "pid")
		states[ns] = &state{pid: pid, gen0: cur.GetGeneration()}
	}
	var wg sync.WaitGroup
	for i := range n {
		ns := fmt.Sprintf("host-%02d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			patch := fmt.Sprintf(`{"spec":{"command":["/bin/sleep","%d"]}}`, secs)
			mu.Lock()
			states[ns].start = time.Now()
			mu.Unlock()
			_, err := dyn.Resource(processes).Namespace(ns).Patch(ctx, "p", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			check(err)
		}()
	}
	wg.Wait()
	left := n
	for left > 0 {
		var ev watch.Event
		var open bool
		select {
		case ev, open = <-w.ResultChan():
			if !open {
				// The API server ended the watch: watch again (every
				// object comes as ADDED first).
				w, err = dyn.Resource(processes).Namespace("").Watch(ctx, metav1.ListOptions{LabelSelector: "reconciled.dev/host"})
				check(err)
				continue
			}
		case <-ctx.Done():
			mu.Lock()
			var stuck []string
			for ns, s := range states {
				if s.done.IsZero() && len(stuck) < 3 {
					stuck = append(stuck, fmt.Sprintf("%s (generation %d, pid %d before; last seen %s)", ns, s.gen0, s.pid, s.last))
				}
			}
			fatalf("kube: %d of %d hosts did not converge within 3 minutes: %s", left, n, strings.Join(stuck, "; "))
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		mu.Lock()
		s := states[u.GetNamespace()]
		if s != nil && s.done.IsZero() {
			if s.seen.IsZero() && u.GetGeneration() > s.gen0 {
				s.seen = time.Now()
			}
			og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
			pid, _, _ := unstructured.NestedInt64(u.Object, "status", "pid")
			phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
			s.last = fmt.Sprintf("%s generation %d observed %d pid %d %s", ev.Type, u.GetGeneration(), og, pid, phase)
			if og > s.gen0 && pid != 0 && pid != s.pid && phase == "Running" {
				s.done = time.Now()
				left--
			}
		}
		mu.Unlock()
	}
	for _, s := range states {
		took = append(took, s.done.Sub(s.start))
		if !s.seen.IsZero() {
			floor = append(floor, s.seen.Sub(s.start))
		}
	}
	return took, floor
}

// simulateAgent holds what an agent holds of the API server (a watch per
// kind it applies, on its own connection) and renews a Lease every 10 s,
// until ctx is done.
func simulateAgent(ctx context.Context, base *rest.Config, host string) {
	cfg := rest.CopyConfig(base)
	var d net.Dialer
	cfg.Dial = d.DialContext // a connection of its own, as a separate host has
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return
	}
	client, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return
	}
	for _, plural := range []string{"processes", "links", "checks", "modules", "pinodes", "alertroutes"} { // started before the Lease
		gvr := schema.GroupVersionResource{Group: "reconciled.dev", Version: "v1alpha1", Resource: plural}
		go func() {
			for ctx.Err() == nil {
				w, err := dyn.Resource(gvr).Namespace("sim").Watch(ctx, metav1.ListOptions{LabelSelector: "reconciled.dev/host=" + host})
				if err != nil {
					time.Sleep(time.Second)
					continue
				}
				for range w.ResultChan() {
				}
			}
		}()
	}
	leases := client.CoordinationV1().Leases("reconciled-system")
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		now := metav1.NowMicro()
		l, err := leases.Get(ctx, host, metav1.GetOptions{})
		if err != nil {
			leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: host},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(host), LeaseDurationSeconds: ptr.To(int32(40)), RenewTime: &now}}, metav1.CreateOptions{})
		} else {
			l.Spec.RenewTime = &now
			leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rssMiBOf is a process's resident memory.
func rssMiBOf(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb float64
			fmt.Sscan(strings.Fields(l)[1], &kb)
			return kb / 1024
		}
	}
	return 0
}

// connsTo counts the established TCP connections to the port of url.
func connsTo(url string) int {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "https://"))
	b, _ := os.ReadFile("/proc/net/tcp")
	var p int
	fmt.Sscan(port, &p)
	local := fmt.Sprintf(":%04X ", p)
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 3 && strings.HasSuffix(f[1]+" ", local) && f[3] == "01" {
			n++
		}
	}
	return n
}
