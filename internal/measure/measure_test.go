// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package measure

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

func measure(t *testing.T, m *Measurer, s v1alpha1.CheckSpec) (float64, error) {
	t.Helper()
	s.Timeout = &metav1.Duration{Duration: 5 * time.Second}
	return m.Measure(context.Background(), &s)
}

// A tmpfs of 4 MiB filled to 85 % reads 85 % used, as df says; its
// inodes are counted too.
func TestDiskUsageTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,nr_inodes=100"); err != nil {
		fixtures.SkipOrFail(t, "mounting a tmpfs (needs root): "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(dir, "fill"), make([]byte, 4<<20*85/100), 0o600); err != nil {
		t.Fatal(err)
	}
	m := New(Options{})
	v, err := measure(t, m, v1alpha1.CheckSpec{DiskUsage: &v1alpha1.DiskUsageSource{Path: dir}})
	if err != nil || math.Abs(v-85) > 0.5 {
		t.Fatalf("disk usage %v %v, want 85", v, err)
	}
	out, err := exec.Command("df", "--output=pcent", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if df := strings.TrimSpace(strings.Split(strings.TrimSpace(string(out)), "\n")[1]); df != "85%" && df != "86%" {
		t.Fatalf("df says %s, we say %.2f", df, v)
	}
	v, err = measure(t, m, v1alpha1.CheckSpec{DiskUsage: &v1alpha1.DiskUsageSource{Path: dir, Inodes: true}})
	if err != nil || v < 1 || v > 5 { // the root folder and one file of 100
		t.Fatalf("inode usage %v %v", v, err)
	}
	if _, err := measure(t, m, v1alpha1.CheckSpec{DiskUsage: &v1alpha1.DiskUsageSource{Path: filepath.Join(dir, "missing")}}); err == nil {
		t.Fatal("no error for a missing path")
	}
}

// Load, memory and uptime come from the real /proc; a spinning process
// raises the load above what the kernel reported before it... eventually,
// so the test checks what can be checked at once: the value is the
// kernel's, divided by the CPUs.
func TestProcSources(t *testing.T) {
	m := New(Options{})
	up, err := measure(t, m, v1alpha1.CheckSpec{Uptime: &v1alpha1.UptimeSource{}})
	var info unix.Sysinfo_t
	if err != nil || unix.Sysinfo(&info) != nil || math.Abs(up-float64(info.Uptime)) > 2 {
		t.Fatalf("uptime %v %v, sysinfo %d", up, err, info.Uptime)
	}
	mem, err := measure(t, m, v1alpha1.CheckSpec{Memory: &v1alpha1.MemorySource{}})
	if err != nil || mem <= 0 || mem >= 100 {
		t.Fatalf("memory %v %v", mem, err)
	}
	load, err := measure(t, m, v1alpha1.CheckSpec{Load: &v1alpha1.LoadSource{Window: "15m"}})
	if err != nil || load < 0 {
		t.Fatalf("load %v %v", load, err)
	}
	// A fake /proc shows the arithmetic.
	proc := t.TempDir()
	os.WriteFile(filepath.Join(proc, "loadavg"), []byte("4.00 2.00 1.00 1/100 42\n"), 0o644)
	os.WriteFile(filepath.Join(proc, "meminfo"), []byte("MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:  250 kB\n"), 0o644)
	fake := New(Options{Proc: proc})
	if v, _ := measure(t, fake, v1alpha1.CheckSpec{Load: &v1alpha1.LoadSource{Window: "5m"}}); v != 2/float64(numCPU()) {
		t.Fatalf("load 5m %v", v)
	}
	if v, _ := measure(t, fake, v1alpha1.CheckSpec{Memory: &v1alpha1.MemorySource{}}); v != 75 {
		t.Fatalf("memory %v", v)
	}
	if _, err := measure(t, fake, v1alpha1.CheckSpec{Uptime: &v1alpha1.UptimeSource{}}); err == nil {
		t.Fatal("no error without /proc/uptime")
	}
}

// A process the test starts is counted by its command line, and a Process
// resource by its pid.
func TestProcessCount(t *testing.T) {
	marker := "measure-test-" + filepath.Base(t.TempDir())
	m := New(Options{ProcessPID: func(name string) int {
		if name == "web" {
			return 42
		}
		return 0
	}})
	count := func() float64 {
		v, err := measure(t, m, v1alpha1.CheckSpec{ProcessCount: &v1alpha1.ProcessCountSource{Match: "sleep 1000; : " + marker}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if n := count(); n != 0 {
		t.Fatalf("%v before start", n)
	}
	for range 2 {
		cmd := exec.Command("/bin/sh", "-c", "sleep 1000; : "+marker)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	waitfor.Within(t, 10*time.Second, "both processes counted", func() bool { return count() == 2 })
	if v, _ := measure(t, m, v1alpha1.CheckSpec{ProcessCount: &v1alpha1.ProcessCountSource{Process: "web"}}); v != 1 {
		t.Fatalf("process web: %v", v)
	}
	if v, _ := measure(t, m, v1alpha1.CheckSpec{ProcessCount: &v1alpha1.ProcessCountSource{Process: "db"}}); v != 0 {
		t.Fatalf("process db: %v", v)
	}
}

func TestExecValue(t *testing.T) {
	m := New(Options{})
	cases := []struct {
		script string
		want   float64
		err    string
	}{
		{"echo 'queue: 17 items'", 17, ""},
		{"printf '%s\\n' -3.5e2", -350, ""},
		{"echo none", 0, "no number"},
		{"echo broken >&2; exit 3", 0, "broken"},
		{"sleep 30", 0, "timeout"},
	}
	for _, c := range cases {
		s := v1alpha1.CheckSpec{Exec: &v1alpha1.ExecCheck{Command: []string{"/bin/sh", "-c", c.script}}, Timeout: &metav1.Duration{Duration: 300 * time.Millisecond}}
		v, err := m.Measure(context.Background(), &s)
		if c.err == "" && (err != nil || v != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v %v", c.script, v, err)
		}
	}
}

func TestFileAge(t *testing.T) {
	now := time.Now()
	f := filepath.Join(t.TempDir(), "last")
	os.WriteFile(f, nil, 0o644)
	os.Chtimes(f, now.Add(-time.Hour), now.Add(-time.Hour))
	m := New(Options{Now: func() time.Time { return now }})
	if v, err := measure(t, m, v1alpha1.CheckSpec{FileAge: &v1alpha1.FileAgeSource{Path: f}}); err != nil || math.Abs(v-3600) > 1 {
		t.Fatalf("age %v %v", v, err)
	}
}

func TestHTTPValue(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Write([]byte(`{"queue": {"depth": 12, "name": "mail"}, "ok": true}`))
		case "/metrics":
			w.Write([]byte("# TYPE q gauge\nq{name=\"a\"} 1\nq{name=\"b\"} 7.5\n"))
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	m := New(Options{})
	for _, c := range []struct {
		src  v1alpha1.HTTPValueSource
		want float64
		err  string
	}{
		{v1alpha1.HTTPValueSource{URL: srv.URL + "/json", JSONPath: "{.queue.depth}"}, 12, ""},
		{v1alpha1.HTTPValueSource{URL: srv.URL + "/json", JSONPath: ".ok"}, 1, ""},
		{v1alpha1.HTTPValueSource{URL: srv.URL + "/json", JSONPath: ".queue.name"}, 0, "not a number"},
		{v1alpha1.HTTPValueSource{URL: srv.URL + "/metrics", Metric: "q", Labels: map[string]string{"name": "b"}}, 7.5, ""},
		{v1alpha1.HTTPValueSource{URL: srv.URL + "/metrics", Metric: "r"}, 0, "no metric r"},
		{v1alpha1.HTTPValueSource{URL: srv.URL + "/gone", JSONPath: ".x"}, 0, "404"},
	} {
		v, err := measure(t, m, v1alpha1.CheckSpec{HTTP: &c.src})
		if c.err == "" && (err != nil || v != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %v %v", c.src, v, err)
		}
	}
}

func FuzzFirstNumber(f *testing.F) {
	for _, s := range []string{"17", "load: 0.42", "-3.5e2 x", "", "e5", "1e999", ".5", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := FirstNumber(s)
		if err == nil && math.IsNaN(v) {
			t.Fatalf("%q gave NaN", s)
		}
	})
}

func FuzzJSONValue(f *testing.F) {
	f.Add([]byte(`{"a": {"b": 1}}`), "{.a.b}")
	f.Add([]byte(`[1,2,3]`), "{[1]}")
	f.Add([]byte(`{"a": "x"}`), ".a")
	f.Add([]byte(`nope`), "{.a")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		JSONValue(doc, path) // must not panic; errors are fine
	})
}

func FuzzMetricValue(f *testing.F) {
	f.Add([]byte("# TYPE q gauge\nq{name=\"a\"} 1\n"), "q")
	f.Add([]byte("q 1 2 3\n"), "q")
	f.Add([]byte("h_sum 3\nh_count 1\n"), "h_sum")
	f.Fuzz(func(t *testing.T, text []byte, metric string) {
		MetricValue(text, metric, nil)
	})
}
