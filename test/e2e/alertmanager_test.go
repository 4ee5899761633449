// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// alertmanagerBin finds Debian's prometheus-alertmanager or skips t.
func alertmanagerBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		fixtures.SkipOrFail(t, "prometheus-alertmanager is not installed (make test installs it)")
	}
	return bin
}

// startAlertmanager runs bin on 127.0.0.1:port (no clustering, a receiver
// that drops every notification) until t ends, waits until it is ready
// and returns its base URL.
func startAlertmanager(t *testing.T, bin string, port int) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "am.yml")
	writeFile(t, conf, "route: {receiver: devnull}\nreceivers: [{name: devnull}]\n")
	am := exec.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=")
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Process.Kill(); am.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitfor.Within(t, waitTimeout, "alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

// amHasAlert reports whether the Alertmanager at base has an active alert
// named name whose labels include the label/value pairs of extra, and
// whether it answered at all: an Alertmanager that is gone has no alerts
// either, which must not count as "resolved".
func amHasAlert(base, name string, extra ...string) (has, answered bool) {
	resp, err := http.Get(base + "/api/v2/alerts?active=true")
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var alerts []map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&alerts) != nil {
		return false, false
	}
	for _, a := range alerts {
		labels, _ := a["labels"].(map[string]any)
		if labels["alertname"] != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(extra); i += 2 {
			ok = ok && labels[extra[i]] == extra[i+1]
		}
		if ok {
			return true, true
		}
	}
	return false, true
}

// A real Alertmanager (Debian's) receives LinkDown while the link is down,
// sees it resolved when it comes back, and gets `reconcilectl alert test`.
func TestAlertmanagerReceivesAndResolves(t *testing.T) {
	base := startAlertmanager(t, alertmanagerBin(t), freePort(t))
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptAll(l)
	addr := l.Addr().String()
	e.start()
	e.write("am.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: to-am}
spec:
  match: {kinds: [Link]}
  groupWait: 100ms
  receivers:
  - alertmanager: {url: %q}
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata:
  name: a2rtr
  labels: {site: hecnet}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 2
`, base, addr))
	e.waitLink("a2rtr", "Up")
	l.Close()
	e.waitLink("a2rtr", "Down")
	e.eventually("LinkDown in Alertmanager", func() bool {
		has, _ := amHasAlert(base, "LinkDown", "name", "a2rtr", "kind", "Link", "severity", "critical", "site", "hecnet")
		return has
	})

	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go acceptAll(l2)
	e.waitLink("a2rtr", "Up")
	e.eventually("LinkDown resolved in Alertmanager", func() bool {
		has, answered := amHasAlert(base, "LinkDown", "name", "a2rtr")
		return answered && !has
	})

	if out := e.ctl("alert", "test", "to-am"); !strings.Contains(out, "queued") {
		t.Fatalf("alert test: %s", out)
	}
	e.eventually("the test alert in Alertmanager", func() bool {
		has, _ := amHasAlert(base, "AlertRouteTest", "test", "true")
		return has
	})
}

// A Check's level reaches a real Alertmanager as labels (level,
// previousLevel, item, host), so its routes can select on them as
// reconciled's own do; the best level resolves the alert.
func TestAlertmanagerCheckLevels(t *testing.T) {
	base := startAlertmanager(t, alertmanagerBin(t), freePort(t))
	e := newEnv(t, "--host", "web1")
	valueFile := filepath.Join(t.TempDir(), "queue")
	writeFile(t, valueFile, "50\n")
	e.write("am.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: to-am}
spec:
  match: {kinds: [Check]}
  groupWait: 100ms
  receivers:
  - alertmanager: {url: %q}
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: queue, labels: {item: mail_queue}}
spec:
  exec: {command: [/bin/cat, %q]}
  interval: 500ms
  levels: [{level: critical, above: 95}, {level: sick, above: 90}]
`, base, valueFile))
	e.start()
	e.waitCheck("queue", "fine")
	writeFile(t, valueFile, "92\n")
	e.waitCheck("queue", "sick")
	writeFile(t, valueFile, "97\n")
	e.waitCheck("queue", "critical")
	e.eventually("CheckLevel critical (was sick) in Alertmanager", func() bool {
		has, _ := amHasAlert(base, "CheckLevel", "name", "queue", "kind", "Check", "level", "critical", "previousLevel", "sick",
			"severity", "critical", "item", "mail_queue", "host", "web1")
		return has
	})
	writeFile(t, valueFile, "10\n")
	e.waitCheck("queue", "fine")
	e.eventually("CheckLevel resolved in Alertmanager", func() bool {
		has, answered := amHasAlert(base, "CheckLevel", "name", "queue")
		return answered && !has
	})
}
