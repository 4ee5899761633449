// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reconciled/reconciled/test/fixtures"
)

// The status page in a real browser: headless Chromium from Debian loads
// the page from a running daemon; the test asserts on the DOM, follows the
// link to a detail page and saves a full-page screenshot.
func TestStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		fixtures.SkipOrFail(t, "chromium is not installed (apt-get install chromium, or run hack/install-test-deps.sh)")
	}
	began := time.Now()
	port := freePort(t)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	e.start()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go acceptAll(l)
	closed := freePort(t)
	queueFile := filepath.Join(t.TempDir(), "queue")
	os.WriteFile(queueFile, []byte("50\n"), 0o644)
	e.write("page.yaml", sleeper(e, "web", "")+fmt.Sprintf(`---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: aa-gone}
spec:
  tcp: {address: "127.0.0.1:%d"}
  interval: 100ms
  timeout: 100ms
  failureThreshold: 1
---
apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: bb-fine}
spec:
  tcp: {address: %q}
  interval: 100ms
  timeout: 100ms
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: zz-queue}
spec:
  exec: {command: [/bin/cat, %q]}
  interval: 500ms
  levels: [{level: critical, above: 95}, {level: sick, above: 90}]
`, closed, l.Addr().String(), queueFile))
	e.waitProcess("web", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitLink("bb-fine", "Up")
	e.waitLink("aa-gone", "Down")
	e.eventually("a few probes of each link for the sparklines", func() bool {
		fine, _ := e.probes("bb-fine")
		gone, _ := e.probes("aa-gone")
		return fine >= 5 && gone >= 5
	})

	prof := t.TempDir()
	t.Cleanup(func() { killChromium(t, prof) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(prof),
		chromedp.WindowSize(1000, 800), chromedp.Flag("disable-quic", true), chromedp.Flag("hide-scrollbars", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	// The first Do starts the browser and must not carry a timeout (it would
	// bound the browser's life): bound it with a timer instead.
	startBrowser := time.Now()
	watchdog := time.AfterFunc(60*time.Second, cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	watchdog.Stop()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	type row struct {
		Name  string `json:"name"`
		Phase string `json:"phase"`
		Class string `json:"class"`
	}
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s in chromium: %v\n%s", what, err, e.log.String())
		}
	}
	fail("load /", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#resources"))))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("#resources tbody tr")].map(r => {
		const p = r.querySelector("td.phase");
		return {name: r.dataset.name || "", phase: p ? p.textContent : "", class: p ? p.className : ""};
	})`))
	fail("read rows", err)
	svgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#resources tr[data-kind=Link] svg.spark").length`))
	fail("count sparklines", err)
	evText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#events")))
	fail("read events", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	fail("screenshot", err)
	t.Logf("rows: %+v", rows)
	saveShot(t, "reconciled-statuspage.png", shot)
	idx := map[string]int{}
	for i, r := range rows {
		idx[r.Name] = i
	}
	gone, ok1 := idx["aa-gone"]
	fine, ok2 := idx["bb-fine"]
	web, ok3 := idx["web"]
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("rows missing: %+v", rows)
	}
	if gone > fine || gone > web || gone != 0 {
		t.Errorf("the Down link is not first: %+v", rows)
	}
	if r := rows[gone]; r.Phase != "Down" || !strings.Contains(" "+r.Class+" ", " bad ") {
		t.Errorf("Down link's phase cell: %+v", r)
	}
	if r := rows[fine]; strings.Contains(r.Class, "bad") {
		t.Errorf("the Up link is marked bad: %+v", r)
	}
	if svgs != 2 {
		t.Errorf("%d link sparklines, want 2", svgs)
	}
	if !strings.Contains(evText, "LinkDown") || !strings.Contains(evText, "Link/aa-gone") {
		t.Errorf("events section lacks the LinkDown event:\n%s", evText)
	}

	// The little script swaps in a fresh #main every 5 s.
	fail("mark the overview", chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("main").dataset.stale = "1"`)))
	refreshCtx, cancelRefresh := context.WithTimeout(ctx, 10*time.Second)
	_, err = chromedp.Run(refreshCtx, chromedp.Poll[bool](`!document.getElementById("main").dataset.stale`))
	cancelRefresh()
	fail("live refresh of the overview", err)

	fail("open the detail page", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#resources a[href="/ui/links/aa-gone"]`)),
		chromedp.WaitVisible(chromedp.CSS("#conditions"))))
	title, err := chromedp.Run(ctx, chromedp.Title())
	fail("title", err)
	conds, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#conditions")))
	fail("read conditions", err)
	detailSvgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.spark").length`))
	fail("count detail sparklines", err)
	shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	fail("detail screenshot", err)
	saveShot(t, "reconciled-statuspage-link.png", shot)
	if !strings.Contains(title, "Link/aa-gone") {
		t.Errorf("detail title %q", title)
	}
	if !strings.Contains(conds, "Ready") || !strings.Contains(conds, "False") || !strings.Contains(conds, "LinkDown") {
		t.Errorf("conditions table lacks the Down reason:\n%s", conds)
	}
	if detailSvgs != 1 {
		t.Errorf("detail page has %d sparklines, want 1", detailSvgs)
	}
	// A Check: the sparkline on the overview, the five ranges with level
	// bands on its page.
	os.WriteFile(queueFile, []byte("92\n"), 0o644)
	e.eventually("check zz-queue sick", func() bool { c, _ := e.getCheck("zz-queue"); return c.Status.Level == "sick" })
	fail("open the overview again", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#resources"))))
	sparks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#resources tr[data-kind=Check] svg.checkgraph polyline").length`))
	fail("count check sparklines", err)
	fail("open the check page", chromedp.Do(ctx, chromedp.Navigate(base+"/ui/checks/zz-queue"), chromedp.WaitVisible(chromedp.CSS("#history"))))
	type graph struct {
		Range string   `json:"range"`
		Bands []string `json:"bands"`
		Lines int      `json:"lines"`
		W     float64  `json:"w"`
	}
	graphs, err := chromedp.Run(ctx, chromedp.Evaluate[[]graph](`[...document.querySelectorAll("#history svg.checkgraph")].map(g => ({
		range: g.dataset.range, bands: [...g.querySelectorAll("rect.band")].map(b => b.dataset.level), lines: g.querySelectorAll("polyline").length,
		w: g.getBoundingClientRect().width}))`))
	fail("read the check graphs", err)
	shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	fail("check screenshot", err)
	saveShot(t, "reconciled-statuspage-check.png", shot)
	if sparks != 1 {
		t.Errorf("the overview has %d check sparklines, want 1", sparks)
	}
	var ranges []string
	for _, g := range graphs {
		ranges = append(ranges, g.Range)
		if len(g.Bands) != 2 || g.Bands[0] != "sick" || g.Bands[1] != "critical" || g.Lines != 1 || g.W < 500 {
			t.Errorf("graph %+v: want the sick and critical bands (critical on top), a line, drawn 600 wide", g)
		}
	}
	if strings.Join(ranges, ",") != "hour,day,week,month,year" {
		t.Errorf("graphs %v, want hour, day, week, month, year", ranges)
	}
	t.Logf("chromium part took %s, whole test %s", time.Since(startBrowser).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	cancel()
	cancelBrowser()
	cancelAlloc()
	e.stop(syscall.SIGTERM)
}

// saveShot writes a screenshot to $TEST_ARTIFACTS, else to the temp dir,
// and logs where.
func saveShot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
		return
	}
	t.Logf("screenshot (%d bytes): %s", len(png), p)
}

// killChromium kills the Chromium processes still using the test's
// profile dir, by pid.
func killChromium(t *testing.T, prof string) {
	out, _ := exec.Command("pgrep", "-f", "--", "--user-data-dir="+prof).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			t.Logf("killing leftover chromium %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
