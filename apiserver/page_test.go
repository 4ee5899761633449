// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package apiserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/resources"
)

const hostile = `<script>alert("x")</script>`

func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	store, err := resources.NewStore(resources.Options{Dir: dir, StateDir: t.TempDir(), Status: resources.StatusNone, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	docs := "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: aaa-web}\nspec: {command: [/bin/sleep, \"100\"]}\n---\n" +
		"apiVersion: reconciled.dev/v1alpha1\nkind: Link\nmetadata: {name: zz-down}\nspec: {tcp: {address: \"127.0.0.1:1\"}}\n---\n" +
		"apiVersion: reconciled.dev/v1alpha1\nkind: Link\nmetadata: {name: aa-up}\nspec: {tcp: {address: \"127.0.0.1:2\"}}\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(docs), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file that defines nothing: it must head the page.
	if err := os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte("apiVersion: reconciled.dev/v1alpha1\nkind: Proces\nmetadata: {name: x}\nspec: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	ready := func(status metav1.ConditionStatus, reason, msg string) []v1alpha1.Condition {
		return []v1alpha1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, LastTransitionTime: now}}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.UpdateStatus(v1alpha1.KindProcess, "aaa-web", v1alpha1.ProcessStatus{
		CommonStatus: v1alpha1.CommonStatus{Phase: "Running", Conditions: ready("True", "Running", "")}, Restarts: 3}))
	must(store.UpdateStatus(v1alpha1.KindLink, "aa-up", v1alpha1.LinkStatus{
		CommonStatus: v1alpha1.CommonStatus{Phase: "Up", Conditions: ready("True", "LinkUp", "")}}))
	must(store.UpdateStatus(v1alpha1.KindLink, "zz-down", v1alpha1.LinkStatus{
		CommonStatus: v1alpha1.CommonStatus{Phase: "Down", Conditions: ready("False", "LinkDown", "refused "+hostile)}}))
	ev, err := events.NewStore(events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev.Eventf(v1alpha1.KindLink, "zz-down", events.TypeWarning, "LinkDown", "down: %s", hostile)
	ev.Eventf(v1alpha1.KindLink, "zz-down", events.TypeWarning, "LinkDown", "down: %s", hostile)
	type probe struct {
		At      time.Time `json:"at"`
		OK      bool      `json:"ok"`
		Seconds float64   `json:"seconds"`
		Latency string    `json:"latency"`
	}
	live := func(kind, name string) (any, bool) {
		if kind != v1alpha1.KindLink {
			return nil, false
		}
		t0 := time.Now().Add(-time.Second)
		return struct {
			History []probe `json:"history"`
		}{[]probe{{t0, true, 0.002, "2ms"}, {t0.Add(100 * time.Millisecond), true, 0.004, "4ms"}, {t0.Add(200 * time.Millisecond), name != "zz-down", 0.001, "1ms"}}}, true
	}
	srv := httptest.NewServer(New(Options{Store: store, Events: ev, Live: live, Log: testr.New(t)}))
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestStatusPage(t *testing.T) {
	srv := pageServer(t)
	code, h, body := fetch(t, srv.URL+"/")
	if code != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", code, h.Get("Content-Type"))
	}
	// Broken files first, as unhealthy (issue 11: they showed nowhere).
	if p, r := strings.Index(body, `id="problems"`), strings.Index(body, `id="resources"`); p < 0 || p > r ||
		!strings.Contains(body, `typo.yaml:2</td>`) || !strings.Contains(body, `unknown kind &#34;Proces&#34;`) {
		t.Errorf("the broken file is not shown above the resources:\n%s", body)
	}
	down := strings.Index(body, `data-name="zz-down"`)
	up := strings.Index(body, `data-name="aa-up"`)
	web := strings.Index(body, `data-name="aaa-web"`)
	if down < 0 || up < 0 || web < 0 || down > up || down > web {
		t.Fatalf("unhealthy not first: down %d up %d web %d\n%s", down, up, web, body)
	}
	if !strings.Contains(body, `<td class="phase bad">Down</td>`) {
		t.Errorf("Down phase not marked bad:\n%s", body)
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("hostile message not escaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("escaped hostile message missing:\n%s", body)
	}
	for _, want := range []string{
		`<b>1</b> unhealthy`, "restarts 3", `<svg class="spark"`, `<polyline points=`, `<circle class="fail"`,
		`href="/ui/links/zz-down"`, "LinkDown", "x2", `name="viewport"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://"} { // no external resources, except the SVG namespace
		if strings.Count(body, bad) != strings.Count(body, bad+"www.w3.org/2000/svg") {
			t.Errorf("overview references an external %s resource", bad)
		}
	}
}

func TestDetailPage(t *testing.T) {
	srv := pageServer(t)
	code, _, body := fetch(t, srv.URL+"/ui/links/zz-down")
	if code != 200 {
		t.Fatalf("detail: %d\n%s", code, body)
	}
	for _, want := range []string{`<td class="reason">LinkDown</td>`, "127.0.0.1:1", `<svg class="spark"`, "Conditions", "x2 over", "phase: Down"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("hostile message not escaped on the detail page")
	}
	if code, _, body := fetch(t, srv.URL+"/ui/processes/aaa-web"); code != 200 || !strings.Contains(body, "restarts 3") || !strings.Contains(body, "/bin/sleep") {
		t.Errorf("process detail: %d\n%s", code, body)
	}
	for _, p := range []string{"/ui/links/nope", "/ui/nokind/zz-down", "/ui/processes/" + "%3Cscript%3E"} {
		code, _, body := fetch(t, srv.URL+p)
		if code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("%s: unescaped name in the 404 page", p)
		}
	}
}

func TestSparkline(t *testing.T) {
	sp := newSparkline([]liveProbe{{OK: true, Seconds: 0.01}, {OK: false}, {OK: true, Seconds: 0.02}}, 104, 24)
	if sp.Points != "2.0,13.0 102.0,4.0" || len(sp.Fails) != 1 || sp.Fails[0].X != 52 || sp.Failures != 1 || sp.Max != "20ms" {
		t.Fatalf("sparkline: %+v", sp)
	}
	if sp := newSparkline(nil, 100, 20); sp.Points != "" || sp.Last != "" {
		t.Fatalf("empty sparkline: %+v", sp)
	}
}
