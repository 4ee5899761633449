// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// lookPromBin finds a binary of Debian's prometheus package or skips.
func lookPromBin(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		fixtures.SkipOrFail(t, fmt.Sprintf("%s is not installed (Debian package prometheus; make test installs it)", name))
	}
	return bin
}

// fetchMetrics returns the body of GET base/metrics.
func fetchMetrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// hasFamily reports whether the exposition has HELP and TYPE lines for name.
func hasFamily(body, name string) (help, typ bool) {
	for _, line := range strings.Split(body, "\n") {
		help = help || strings.HasPrefix(line, "# HELP "+name+" ")
		typ = typ || strings.HasPrefix(line, "# TYPE "+name+" ")
	}
	return help, typ
}

// The metrics of docs/reference.md that the setup of TestMetricsPromtool
// produces. reconciled_module_active needs a Module, that is a systemd
// with its own bus (the Module tests' sandbox), so it is left out here.
var interfaceMetrics = []string{
	"reconciled_reconcile_total",
	"reconciled_reconcile_duration_seconds",
	"reconciled_workqueue_depth",
	"reconciled_resources",
	"reconciled_invalid_resources",
	"reconciled_process_restarts_total",
	"reconciled_process_up",
	"reconciled_link_up",
	"reconciled_link_latency_seconds",
	"reconciled_link_transitions_total",
	"reconciled_pinode_phase", // a PiNode without netboot: settings stays Pending
	"reconciled_alerts_sent_total",
	"reconciled_alerts_pending",
	"reconciled_check_value",
	"reconciled_check_level",
}

// A live /metrics passes `promtool check metrics` (no lint problems), and
// every metric of docs/reference.md the setup can produce has HELP and TYPE.
func TestMetricsPromtool(t *testing.T) {
	promtool := lookPromBin(t, "promtool")
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	e.start()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go acceptAll(up)
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptAll(gone)
	e.write("procs.yaml", sleeper(e, "web", "")+fmt.Sprintf(`---
apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: flappy}
spec:
  command: ["/bin/sh", "-c", "sleep 0.2"]
  env: {E2E_DIR: %q}
  backoff: {initial: 100ms, max: 200ms}
`, e.dir))
	e.write("links.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: peer}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: gone}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
---
apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: ops}
spec:
  groupWait: 100ms
  receivers:
  - log: {}
---
apiVersion: reconciled.dev/v1alpha1
kind: PiNode
metadata: {name: pi-1}
spec:
  mac: "dc:a6:32:01:02:03"
  ip: 172.16.7.10
  switch: {address: "127.0.0.1:161", port: 1, community: private}
  installGeneration: 0
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: uptime}
spec:
  uptime: {}
  levels: [{level: sick, below: 60}]
`, up.Addr().String(), gone.Addr().String()))
	e.waitProcess("web", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitLink("peer", "Up")
	e.waitLink("gone", "Up")
	gone.Close()
	e.waitLink("gone", "Down")
	e.waitProcess("flappy", "restarted", func(p process) bool { return p.Status.Restarts > 0 })

	var body string
	var missing []string
	t.Cleanup(func() {
		if t.Failed() && len(missing) > 0 {
			t.Logf("metrics without HELP/TYPE: %v\n--- /metrics:\n%s", missing, body)
		}
	})
	e.eventually("every docs/reference.md metric on /metrics", func() bool {
		body = fetchMetrics(t, base)
		missing = missing[:0]
		for _, name := range interfaceMetrics {
			if help, typ := hasFamily(body, name); !help || !typ {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0 && strings.Contains(body, `reconciled_alerts_sent_total{receiver=`)
	})

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Fatalf("promtool check metrics: %v\n%s\n--- /metrics:\n%s", err, out.String(), body)
	}
	for _, want := range []string{
		"# TYPE reconciled_reconcile_total counter",
		"# TYPE reconciled_reconcile_duration_seconds histogram",
		"# TYPE reconciled_workqueue_depth gauge",
		"# TYPE reconciled_resources gauge",
		"# TYPE reconciled_invalid_resources gauge",
		"# TYPE reconciled_process_restarts_total counter",
		"# TYPE reconciled_process_up gauge",
		"# TYPE reconciled_link_up gauge",
		"# TYPE reconciled_link_latency_seconds gauge",
		"# TYPE reconciled_link_transitions_total counter",
		"# TYPE reconciled_pinode_phase gauge",
		"# TYPE reconciled_alerts_sent_total counter",
		"# TYPE reconciled_alerts_pending gauge",
		`reconciled_link_up{name="peer"} 1`,
		`reconciled_link_up{name="gone"} 0`,
		`reconciled_link_transitions_total{name="gone"} 1`,
		`reconciled_pinode_phase{name="pi-1",phase="Pending"} 1`,
		`reconciled_alerts_pending{route="ops"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The example alerting rules pass `promtool check rules`.
func TestMetricsPromtoolRules(t *testing.T) {
	promtool := lookPromBin(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", "../../deploy/prometheus/reconciled-rules.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// promQuery runs an instant query against Prometheus's HTTP API and
// returns the value of its only sample ("" while there is none).
func promQuery(base, query string) (string, error) {
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {query}}.Encode())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	if r.Status != "success" {
		return "", fmt.Errorf("query %s: %s", query, r.Error)
	}
	if len(r.Data.Result) != 1 || len(r.Data.Result[0].Value) != 2 {
		return "", nil
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	return v, nil
}

// A real Prometheus (Debian's) scrapes the daemon; reconciled_link_up
// follows the Link's target: 1 while it listens, 0 once it is gone.
func TestPrometheusScrapes(t *testing.T) {
	bin := lookPromBin(t, "prometheus")
	daemonPort, promPort := freePort(t), freePort(t)
	for promPort == daemonPort {
		promPort = freePort(t)
	}
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", daemonPort))
	e.start()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptAll(l)
	e.write("link.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: a2rtr}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
`, l.Addr().String()))
	e.waitLink("a2rtr", "Up")

	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	writeFile(t, conf, fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
- job_name: reconciled
  static_configs: [{targets: ["127.0.0.1:%d"]}]
`, mustAbs(t, "../../deploy/prometheus/reconciled-rules.yml"), daemonPort))
	promLog := &syncbuf.Buffer{}
	prom := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	prom.Stdout, prom.Stderr = promLog, promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		prom.Process.Kill()
		prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	start := time.Now()
	waitProm := func(what string, cond func() bool) {
		t.Helper()
		waitfor.Within(t, time.Minute, what, cond)
		t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
	}
	waitProm("prometheus ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	query := `reconciled_link_up{name="a2rtr"}`
	var last string
	var lastErr error
	value := func(want string) func() bool {
		return func() bool {
			last, lastErr = promQuery(base, query)
			if lastErr != nil {
				t.Logf("%v", lastErr)
			}
			return last == want
		}
	}
	waitProm(query+" = 1", value("1"))
	if v, err := promQuery(base, `up{job="reconciled"}`); err != nil || v != "1" {
		t.Fatalf(`up{job="reconciled"} = %q, %v`, v, err)
	}

	l.Close()
	e.waitLink("a2rtr", "Down")
	waitProm(query+" = 0", value("0"))
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
