// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/fleet"
	"github.com/reconciled/reconciled/resources"
)

// With a fleet read token, reads over TCP need it (or the API token);
// the probes do not, and the unix socket never does. /sd/prometheus lists
// the Hosts; /fleet shows this host and an unreachable one.
func TestFleetEndpoints(t *testing.T) {
	dir := t.TempDir()
	docs := `apiVersion: reconciled.dev/v1alpha1
kind: Host
metadata: {name: web1, labels: {role: web}}
spec: {address: "127.0.0.1:1"}
---
apiVersion: reconciled.dev/v1alpha1
kind: Host
metadata: {name: me}
spec: {address: "127.0.0.1:2"}
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: root-usage}
spec:
  diskUsage: {path: /}
  levels: [{level: critical, above: 95}]
`
	if err := os.WriteFile(filepath.Join(dir, "hosts.yaml"), []byte(docs), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := resources.NewStore(resources.Options{Dir: dir, Status: resources.StatusNone, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	// A Check at a level other than its best is unhealthy on the page.
	if err := store.UpdateStatus(v1alpha1.KindCheck, "root-usage", v1alpha1.CheckStatus{Level: "critical", PreviousLevel: "fine",
		CommonStatus: v1alpha1.CommonStatus{Phase: "critical"}}); err != nil {
		t.Fatal(err)
	}
	var srv *Server
	view := fleet.NewView(fleet.Options{Self: "me", Token: "read",
		Hosts:     func() []*v1alpha1.Host { return fleet.HostsOf(store.List(v1alpha1.KindHost)) },
		Local:     func() *fleet.Summary { return srv.Summary() },
		LocalList: func(p, sel string) ([]json.RawMessage, error) { return srv.LocalList(p, sel) }})
	srv = New(Options{Store: store, Log: testr.New(t), Token: "write", ReadToken: "read", Host: "me", Fleet: view})
	srv.SetReady(true)
	base, unix := serve(t, srv)
	get := func(c *http.Client, url, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/sd/prometheus", "", http.StatusUnauthorized},
		{"/metrics", "wrong", http.StatusUnauthorized},
		{BasePath + "/processes", "", http.StatusUnauthorized},
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusOK},
		{"/sd/prometheus", "read", http.StatusOK},
		{BasePath + "/hosts", "write", http.StatusOK},
	} {
		if code, body := get(http.DefaultClient, base+tc.path, tc.token); code != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d (%s)", tc.path, tc.token, code, tc.want, body)
		}
	}
	if code, _ := get(unix, "http://unix"+BasePath+"/processes", ""); code != http.StatusOK {
		t.Errorf("the unix socket needs no token: %d", code)
	}
	_, sd := get(http.DefaultClient, base+"/sd/prometheus", "read")
	var groups []fleet.TargetGroup
	if err := json.Unmarshal([]byte(sd), &groups); err != nil || len(groups) != 2 || groups[1].Targets[0] != "127.0.0.1:1" || groups[1].Labels["role"] != "web" || groups[1].Labels["host"] != "web1" {
		t.Errorf("/sd/prometheus: %v %s", err, sd)
	}
	code, page := get(http.DefaultClient, base+"/fleet", "read")
	if code != http.StatusOK || !strings.Contains(page, `data-host="me"`) || !strings.Contains(page, "unreachable") || !strings.Contains(page, `<b>2</b> hosts`) ||
		!strings.Contains(page, "/ui/checks/root-usage") || !strings.Contains(page, "critical") {
		t.Errorf("/fleet: %d\n%s", code, page)
	}
	_, list := get(unix, "http://unix"+BasePath+"/fleet/hosts", "")
	if !strings.Contains(list, `"name": "web1"`) || !strings.Contains(list, `"error": "unreachable`) {
		t.Errorf(".../fleet/hosts: %s", list)
	}
}
