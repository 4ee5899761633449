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
)

// A real Alertmanager (Debian's) receives LinkDown while the link is down,
// sees it resolved when it comes back, and gets `reconcilectl alert test`.
func TestAlertmanagerReceivesAndResolves(t *testing.T) {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Skip("prometheus-alertmanager is not installed (make test installs it)")
	}
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "am.yml")
	writeFile(t, conf, "route: {receiver: devnull}\nreceivers: [{name: devnull}]\n")
	am := exec.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=")
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { am.Process.Kill(); am.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := newEnv(t)
	e.eventually("alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
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
	active := func(filter string) []map[string]any {
		resp, err := http.Get(base + "/api/v2/alerts?" + filter)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var out []map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	hasAlert := func(name string, extra ...string) bool {
		for _, a := range active("active=true") {
			labels, _ := a["labels"].(map[string]any)
			if labels["alertname"] != name {
				continue
			}
			ok := true
			for i := 0; i+1 < len(extra); i += 2 {
				ok = ok && labels[extra[i]] == extra[i+1]
			}
			if ok {
				return true
			}
		}
		return false
	}
	l.Close()
	e.waitLink("a2rtr", "Down")
	e.eventually("LinkDown in Alertmanager", func() bool {
		return hasAlert("LinkDown", "name", "a2rtr", "kind", "Link", "severity", "critical", "site", "hecnet")
	})

	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go acceptAll(l2)
	e.waitLink("a2rtr", "Up")
	e.eventually("LinkDown resolved in Alertmanager", func() bool { return !hasAlert("LinkDown", "name", "a2rtr") })

	if out := e.ctl("alert", "test", "to-am"); !strings.Contains(out, "queued") {
		t.Fatalf("alert test: %s", out)
	}
	e.eventually("the test alert in Alertmanager", func() bool { return hasAlert("AlertRouteTest", "test", "true") })
}
