// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package measure gets the value a Check describes: disk usage, load,
// memory, uptime, a file's age, a process count, a command's output or a
// number from an HTTP answer. Every source returns a number or an error
// that says why there is none; there is no default value.
package measure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/internal/probe"
)

// maxAnswer is how much of a command's output or an HTTP answer is read.
const maxAnswer = 1 << 20

// Options tells a Measurer where the machine's files are (tests point
// them elsewhere) and how to find a Process resource's main process.
type Options struct {
	// Proc is the proc file system (default /proc).
	Proc string
	// ProcessPID returns the pid of a Process resource's running main
	// process, 0 when it does not run.
	ProcessPID func(name string) int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Measurer gets the values of Checks.
type Measurer struct {
	o      Options
	client *http.Client

	mu   sync.Mutex
	proc map[string]procFile // kernel figures read within the last procTTL
}

// procTTL is how long a read of /proc/loadavg, meminfo or uptime serves
// every Check that asks (the kernel updates the load every 5 s; 1,000
// Checks need not read the same second 750 times).
const procTTL = time.Second

type procFile struct {
	data []byte
	at   time.Time
}

// readProc reads a file of the proc file system, shared for procTTL.
func (m *Measurer) readProc(name string) ([]byte, error) {
	now := time.Now()
	m.mu.Lock()
	f, ok := m.proc[name]
	m.mu.Unlock()
	if ok && now.Sub(f.at) < procTTL && now.Sub(f.at) >= 0 {
		return f.data, nil
	}
	b, err := os.ReadFile(filepath.Join(m.o.Proc, name))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.proc[name] = procFile{data: b, at: now}
	m.mu.Unlock()
	return b, nil
}

// New returns a Measurer.
func New(o Options) *Measurer {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProcessPID == nil {
		o.ProcessPID = func(string) int { return 0 }
	}
	return &Measurer{o: o, client: &http.Client{}, proc: map[string]procFile{}}
}

// Measure gets the value of spec's source within its timeout.
func (m *Measurer) Measure(ctx context.Context, spec *v1alpha1.CheckSpec) (float64, error) {
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout.Duration)
		defer cancel()
	}
	v, err := m.measure(ctx, spec)
	if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		err = fmt.Errorf("the value is %v", v)
	}
	return v, err
}

func (m *Measurer) measure(ctx context.Context, s *v1alpha1.CheckSpec) (float64, error) {
	switch {
	case s.DiskUsage != nil:
		return DiskUsage(s.DiskUsage.Path, s.DiskUsage.Inodes)
	case s.Load != nil:
		return m.load(s.Load.Window)
	case s.Memory != nil:
		return m.memory()
	case s.Uptime != nil:
		return m.uptime()
	case s.FileAge != nil:
		fi, err := os.Stat(s.FileAge.Path)
		if err != nil {
			return 0, err
		}
		return m.o.Now().Sub(fi.ModTime()).Seconds(), nil
	case s.ProcessCount != nil:
		if s.ProcessCount.Process != "" {
			if m.o.ProcessPID(s.ProcessCount.Process) > 0 {
				return 1, nil
			}
			return 0, nil
		}
		return m.processCount(s.ProcessCount.Match)
	case s.Exec != nil:
		return execValue(ctx, s.Exec.Command)
	case s.HTTP != nil:
		return m.httpValue(ctx, s.HTTP)
	}
	return 0, errors.New("no source of the value")
}

// DiskUsage is the percentage of path's file system in use, as df counts
// it: used / (used + available to unprivileged users); of inodes with
// inodes set.
func DiskUsage(path string, inodes bool) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	if inodes {
		if st.Files == 0 {
			return 0, fmt.Errorf("%s: the file system has no inode count", path)
		}
		return 100 * float64(st.Files-st.Ffree) / float64(st.Files), nil
	}
	used := float64(st.Blocks - st.Bfree)
	if used+float64(st.Bavail) == 0 {
		return 0, fmt.Errorf("%s: the file system has no blocks", path)
	}
	return 100 * used / (used + float64(st.Bavail)), nil
}

func (m *Measurer) load(window string) (float64, error) {
	b, err := m.readProc("loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	i := map[string]int{"1m": 0, "5m": 1, "15m": 2}[window]
	if len(f) < 3 {
		return 0, fmt.Errorf("loadavg: unexpected %q", strings.TrimSpace(string(b)))
	}
	v, err := strconv.ParseFloat(f[i], 64)
	if err != nil {
		return 0, fmt.Errorf("loadavg: %w", err)
	}
	return v / float64(numCPU()), nil
}

func (m *Measurer) memory() (float64, error) {
	b, err := m.readProc("meminfo")
	if err != nil {
		return 0, err
	}
	total, avail := meminfoKB(b, "MemTotal:"), meminfoKB(b, "MemAvailable:")
	if total <= 0 || avail < 0 {
		return 0, errors.New("meminfo: no MemTotal or MemAvailable")
	}
	return 100 * (total - avail) / total, nil
}

// meminfoKB is the value of key ("MemTotal:") in /proc/meminfo, -1 when
// it is not there.
func meminfoKB(b []byte, key string) float64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 || i > 0 && b[i-1] != '\n' {
		return -1
	}
	line, _, _ := bytes.Cut(b[i+len(key):], []byte("\n"))
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 64)
	if err != nil {
		return -1
	}
	return v
}

func (m *Measurer) uptime() (float64, error) {
	b, err := m.readProc("uptime")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("uptime: empty")
	}
	return strconv.ParseFloat(f[0], 64)
}

// processCount counts the processes whose command line (arguments joined
// by spaces) matches pattern; this daemon is not counted.
func (m *Measurer) processCount(pattern string) (float64, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(m.o.Proc)
	if err != nil {
		return 0, err
	}
	self := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range entries {
		name := e.Name()
		if name == self || name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.o.Proc, name, "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a kernel thread
		}
		if re.Match(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})) {
			n++
		}
	}
	return float64(n), nil
}

// execValue runs argv; the first number on its standard output is the
// value. A non-zero exit is an error with what it wrote to stderr.
func execValue(ctx context.Context, argv []string) (float64, error) {
	stdout, stderr := &probe.LimitedBuffer{Max: maxAnswer}, &probe.LimitedBuffer{Max: 4096}
	if err := probe.Run(ctx, argv, stdout, stderr); err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("killed after the timeout: %w", ctx.Err())
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return 0, fmt.Errorf("%v: %s", err, lastLine(msg))
		}
		return 0, err
	}
	return FirstNumber(stdout.String())
}

// number is a decimal number as commands print them: 42, -1.5, 3e6, .5.
var number = regexp.MustCompile(`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`)

// FirstNumber returns the first number in s ("load: 0.42 ..." gives
// 0.42), or an error that quotes the start of s.
func FirstNumber(s string) (float64, error) {
	loc := number.FindStringIndex(s)
	if loc == nil {
		return 0, fmt.Errorf("no number in the output %q", clip(s))
	}
	v, err := strconv.ParseFloat(s[loc[0]:loc[1]], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s[loc[0]:loc[1]], err)
	}
	return v, nil
}

func (m *Measurer) httpValue(ctx context.Context, h *v1alpha1.HTTPValueSource) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return 0, err
	}
	if h.Metric != "" {
		req.Header.Set("Accept", "text/plain;version=0.0.4")
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	if h.Metric != "" {
		return MetricValue(body, h.Metric, h.Labels)
	}
	return JSONValue(body, h.JSONPath)
}

// lastLine is the last line of s.
func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// clip shortens s for an error message.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// numCPU is the divisor of the load average.
func numCPU() int { return runtime.NumCPU() }
