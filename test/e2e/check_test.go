// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/test/fixtures"
)

// check is what the tests read of a Check.
type check struct {
	Status struct {
		Level         string   `json:"level"`
		PreviousLevel string   `json:"previousLevel"`
		Value         *float64 `json:"value"`
		Conditions    []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (e *env) getCheck(name string) (check, bool) {
	out, _, code := e.ctlQuiet("get", "check/"+name, "-o", "json")
	var c check
	return c, code == 0 && json.Unmarshal([]byte(out), &c) == nil
}

func (e *env) waitCheck(name, level string) check {
	e.t.Helper()
	var c check
	e.eventually("check "+name+" "+level, func() bool {
		var ok bool
		c, ok = e.getCheck(name)
		return ok && c.Status.Level == level
	})
	return c
}

// dmon's story on one host: a tmpfs filled to 85 %, the uptime, a
// backup's age and a value a command prints are mapped to levels; a level
// change is an event and mail routed by level and by previous level
// through a real SMTP server; the history is served, drawn and kept across
// a restart.
func TestCheckLevelsAndMail(t *testing.T) {
	tmpfs := t.TempDir()
	if err := unix.Mount("tmpfs", tmpfs, "tmpfs", 0, "size=4m"); err != nil {
		fixtures.SkipOrFail(t, "mounting a tmpfs (needs root): "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(tmpfs, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(tmpfs, "fill"), make([]byte, 4<<20*85/100), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, "alerts@example.net", "s3cret")
	s.start(t)
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--host", "web1")
	e.env = []string{"SSL_CERT_FILE=" + s.caFile}
	valueFile := filepath.Join(t.TempDir(), "queue")
	os.WriteFile(valueFile, []byte("queue depth: 50\n"), 0o644)
	backup := filepath.Join(t.TempDir(), "last-backup")
	os.WriteFile(backup, nil, 0o644)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(backup, old, old)
	mail := func(route, to, match string) string {
		return fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: %s}
spec:
  match: %s
  groupWait: 100ms
  repeatInterval: 1h
  receivers:
  - email:
      smarthost: %q
      starttls: true
      username: alerts@example.net
      passwordFile: %q
      from: alerts@example.net
      to: [%s]
`, route, match, s.Addr(), pwFile, to)
	}
	e.write("routes.yaml", mail("critical", "oncall@example.net", "{kinds: [Check], levels: [critical, dead]}")+"---\n"+
		mail("easing", "ops@example.net", "{kinds: [Check], fromLevels: [critical, dead]}"))
	e.write("checks.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: queue, labels: {item: mail_queue}}
spec:
  exec: {command: [/bin/cat, %q]}
  interval: 500ms
  for: 2
  levels:
  - {level: dead,     above: 98}
  - {level: critical, above: 95}
  - {level: sick,     above: 90}
  - {level: soso,     above: 80}
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: tmp-usage, labels: {item: tmp_usage}}
spec:
  diskUsage: {path: %q}
  interval: 1s
  levels: [{level: sick, above: 90}, {level: soso, above: 80}]
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: uptime}
spec:
  uptime: {}
  levels: [{level: sick, below: 600}]
---
apiVersion: reconciled.dev/v1alpha1
kind: Check
metadata: {name: backup}
spec:
  fileAge: {path: %q}
  levels: [{level: critical, above: 3600}]
`, valueFile, tmpfs, backup))
	e.write("link.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata: {name: smtp}
spec:
  tcp: {address: %q}
  interval: 200ms
`, s.Addr()))
	e.start()
	if c := e.waitCheck("queue", "fine"); c.Status.Value == nil || *c.Status.Value != 50 {
		t.Fatalf("queue: %+v", c.Status)
	}
	if c := e.waitCheck("tmp-usage", "soso"); *c.Status.Value < 84.5 || *c.Status.Value > 85.5 {
		t.Fatalf("tmpfs filled to 85%%: %+v", c.Status)
	}
	e.waitCheck("backup", "critical")
	e.waitCheck("uptime", "fine")
	out := e.ctl("get", "checks")
	for _, want := range []string{"NAME", "LEVEL", "VALUE", "SINCE", "queue", "fine", "50", "backup", "critical"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get checks lacks %q:\n%s", want, out)
		}
	}

	// 96 twice (for: 2): critical, from fine; mail to the critical route.
	os.WriteFile(valueFile, []byte("queue depth: 96\n"), 0o644)
	c := e.waitCheck("queue", "critical")
	if c.Status.PreviousLevel != "fine" {
		t.Fatalf("critical: %+v", c.Status)
	}
	subject := "[FIRING] Check mail_queue is critical (was fine) on web1"
	e.eventually("mail for the critical queue", func() bool { return hasMail(s, "oncall@example.net", subject) })
	// Then 92: sick, from critical: the easing route (fromLevels) mails.
	os.WriteFile(valueFile, []byte("queue depth: 92\n"), 0o644)
	e.waitCheck("queue", "sick")
	e.eventually("mail for critical -> sick", func() bool {
		return hasMail(s, "ops@example.net", "[FIRING] Check mail_queue is sick (was critical) on web1")
	})
	if hasMail(s, "ops@example.net", subject) {
		t.Fatal("the easing route (fromLevels: critical, dead) got the fine -> critical mail")
	}
	for _, m := range s.Messages() {
		if strings.Contains(m.Header("Subject"), "uptime") || strings.Contains(m.Header("Subject"), "tmp_usage") {
			t.Fatalf("a mail for a Check no route selects: %s", m.Header("Subject"))
		}
	}
	events := e.ctl("describe", "check", "queue")
	for _, want := range []string{"LevelChanged", "fine -> critical: 96 above 95", "critical -> sick: 92 above 90", "History (last hour)"} {
		if !strings.Contains(events, want) {
			t.Fatalf("describe check queue lacks %q:\n%s", want, events)
		}
	}

	// An error is Unknown, not fine.
	os.Remove(valueFile)
	c = e.waitCheck("queue", "Unknown")
	if c.Status.Value != nil || len(c.Status.Conditions) == 0 || !strings.Contains(c.Status.Conditions[0].Message, "No such file") {
		t.Fatalf("unknown: %+v", c.Status)
	}

	// History: served, drawn, and kept across a restart.
	var h struct {
		Range, Step string
		Points      []struct {
			N, Failures int
			Max         float64
		}
	}
	getHistory := func() {
		resp, err := http.Get(base + "/apis/reconciled.dev/v1alpha1/checks/queue/history?range=day")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &h); err != nil || h.Step != "10m0s" || len(h.Points) == 0 {
			t.Fatalf("history: %v %s", err, b)
		}
	}
	e.eventually("a failed evaluation in the history", func() bool {
		getHistory()
		last := h.Points[len(h.Points)-1]
		return last.Failures > 0 && last.Max == 96 && last.N >= 4
	})
	if resp, err := http.Get(base + "/apis/reconciled.dev/v1alpha1/checks/queue/history?range=decade"); err != nil || resp.StatusCode != 400 {
		t.Fatalf("an unknown range: %v %v", resp, err)
	}
	chart := e.ctl("history", "check/queue", "--range", "hour")
	for _, want := range []string{"check/queue", "level Unknown", "◂ critical", "█", "failed"} {
		if !strings.Contains(chart, want) {
			t.Fatalf("history chart lacks %q:\n%s", want, chart)
		}
	}
	if table := e.ctl("history", "chk", "queue", "--table"); !strings.Contains(table, "MEAN") || !strings.Contains(table, "96") {
		t.Fatalf("history table:\n%s", table)
	}
	metrics := fetchMetrics(t, base)
	for _, want := range []string{`reconciled_check_level{level="critical",name="backup"} 3`, `reconciled_check_level{level="Unknown",name="queue"} -1`, `reconciled_check_value{name="tmp-usage"} 8`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	// Links keep the same history, of their latency.
	e.eventually("link latency in its history", func() bool {
		out, _, code := e.ctlQuiet("history", "link/smtp", "--table")
		return code == 0 && strings.Contains(out, "MEAN") && !strings.Contains(out, " - ")
	})
	if chart := e.ctl("history", "link/smtp"); !strings.Contains(chart, "latency in seconds") || !strings.Contains(chart, "█") {
		t.Fatalf("link history chart:\n%s", chart)
	}
	before := h.Points[len(h.Points)-1]
	e.stop(syscall.SIGTERM)
	e.start()
	getHistory()
	if after := h.Points[len(h.Points)-1]; after.N < before.N || after.Max != 96 {
		t.Fatalf("history after a restart: %+v, before %+v", after, before)
	}
	if c, _ := e.getCheck("backup"); c.Status.Level != "critical" {
		t.Fatalf("level after a restart: %+v", c.Status)
	}
}

// hasMail reports whether the sink got a mail to rcpt with subject.
func hasMail(s *sink, rcpt, subject string) bool {
	for _, m := range s.Messages() {
		if m.Header("Subject") == subject && len(m.To) == 1 && m.To[0] == rcpt {
			return true
		}
	}
	return false
}
