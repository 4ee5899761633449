// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package systemdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/reconciled/reconciled/internal/waitfor"
)

const unit = "sdtest-sleep.service"

// A unit written from the host, loaded, started and stopped over the
// sandbox's system bus, with the signals and the journal a controller
// would use; then the sandbox stops and leaves nothing behind.
func TestUnitLifecycle(t *testing.T) {
	s := Start(t)
	t.Logf("sandbox up in %v: init pid %d, bus %s, units %s", s.Boot.Round(time.Millisecond), s.InitPID, s.BusAddress, s.UnitDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := s.Conn(ctx)
	if err != nil {
		t.Fatalf("connect to %s: %v", s.BusAddress, err)
	}
	updates, updErrs := make(chan *sddbus.PropertiesUpdate, 256), make(chan error, 16)
	conn.SetPropertiesSubscriber(updates, updErrs) // before Subscribe, as the Module controller does
	if err := conn.Subscribe(); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var mu sync.Mutex
	var states []string // ActiveState values of the unit, as PropertiesChanged reported them
	go func() {
		for {
			select {
			case u := <-updates:
				if v, ok := u.Changed["ActiveState"]; ok && u.UnitName == unit {
					st, _ := v.Value().(string)
					mu.Lock()
					states = append(states, st)
					mu.Unlock()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	saw := func(st string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(states, st) }
	}

	if err := s.WriteUnit(unit, "[Unit]\nDescription=systemdtest sleeper\n[Service]\n"+
		"ExecStartPre=/bin/echo sdtest-hello\nExecStart=/bin/sleep infinity\n"); err != nil {
		t.Fatal(err)
	}
	var reloads []time.Duration
	for range 5 {
		t0 := time.Now()
		if err := conn.ReloadContext(ctx); err != nil {
			t.Fatalf("daemon-reload: %v", err)
		}
		reloads = append(reloads, time.Since(t0))
	}
	slices.Sort(reloads)
	t.Logf("daemon-reload over D-Bus: min %v, median %v, max %v", reloads[0].Round(time.Millisecond),
		reloads[2].Round(time.Millisecond), reloads[4].Round(time.Millisecond))

	done := make(chan string, 1)
	t0 := time.Now()
	if _, err := conn.StartUnitContext(ctx, unit, "replace", done); err != nil {
		t.Fatalf("start %s: %v", unit, err)
	}
	if r := <-done; r != "done" {
		t.Fatalf("start job of %s: %s", unit, r)
	}
	t.Logf("StartUnit job done in %v", time.Since(t0).Round(time.Millisecond))
	waitfor.Within(t, 10*time.Second, unit+" ActiveState=active", func() bool {
		p, err := conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
		return err == nil && p.Value.Value() == "active"
	})
	waitfor.Within(t, 10*time.Second, "PropertiesChanged ActiveState=active", saw("active"))

	// MainPID is a pid of the guest's pid namespace: the host sees the
	// process at /proc/<InitPID>/root/proc/<MainPID>, not /proc/<MainPID>.
	// (Type=simple is active once forked: the child is "(sleep)" until it
	// has exec'd.)
	p, err := conn.GetServicePropertyContext(ctx, unit, "MainPID")
	if err != nil {
		t.Fatal(err)
	}
	comm := filepath.Join(s.Root, "proc", strconv.Itoa(int(p.Value.Value().(uint32))), "comm")
	waitfor.Within(t, 10*time.Second, comm+" to read sleep", func() bool {
		b, err := os.ReadFile(comm)
		return err == nil && strings.TrimSpace(string(b)) == "sleep"
	})
	waitfor.Within(t, 10*time.Second, "the unit's output in the journal", func() bool {
		out, err := s.Journal(unit)
		return err == nil && strings.Contains(out, "sdtest-hello")
	})

	if _, err := conn.StopUnitContext(ctx, unit, "replace", done); err != nil {
		t.Fatalf("stop %s: %v", unit, err)
	}
	if r := <-done; r != "done" {
		t.Fatalf("stop job of %s: %s", unit, r)
	}
	waitfor.Within(t, 10*time.Second, "PropertiesChanged ActiveState=inactive", saw("inactive"))
	if out, err := s.Exec("systemctl", "show", "-P", "ActiveState", unit); err != nil || strings.TrimSpace(out) != "inactive" {
		t.Errorf("systemctl show inside: %q, %v", out, err)
	}
	select {
	case err := <-updErrs:
		t.Errorf("properties subscriber: %v", err)
	default:
	}

	t0 = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox stopped in %v", time.Since(t0).Round(time.Millisecond))
	assertGone(t, s.Dir, s.Cgroup, s.InitPID)
}

// Exec reaches the same manager as the bus; ShareDir is the same path on
// both sides.
func TestExecAndShare(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.Conn(ctx)
	if err != nil {
		t.Fatalf("connect to %s: %v", s.BusAddress, err)
	}
	v, err := conn.GetManagerProperty("Version")
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Exec("systemctl", "show", "-P", "Version")
	if err != nil || v != strconv.Quote(strings.TrimSpace(out)) {
		t.Errorf("Version over the bus %s, systemctl inside %q (%v)", v, out, err)
	}
	units, err := conn.ListUnitsByNamesContext(ctx, []string{"sdtest.target"})
	if err != nil || len(units) != 1 || units[0].ActiveState != "active" {
		t.Errorf("sdtest.target: %+v, %v", units, err)
	}
	if err := os.WriteFile(filepath.Join(s.ShareDir, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Exec("cat", filepath.Join(s.ShareDir, "hello")); err != nil || out != "hi" {
		t.Errorf("share dir inside: %q, %v", out, err)
	}
	if _, err := s.Exec("false"); err == nil {
		t.Error("Exec false: no error")
	}
}

// A test binary that is killed leaves its sandbox's watcher behind, which
// stops the sandbox once the owner is gone.
func TestOwnerGone(t *testing.T) {
	owner := exec.Command("sleep", "300")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer owner.Process.Kill()
	dir, cg, pid := startRaw(t, owner.Process.Pid)
	owner.Process.Kill()
	owner.Wait()
	waitfor.Within(t, 30*time.Second, "the watcher to stop the sandbox", func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	})
	assertGone(t, dir, cg, pid)
}

// A sandbox whose processes died without a stop (watcher killed too) is
// removed by gc, and a new one can start in the same dir and cgroup.
func TestGC(t *testing.T) {
	dir, cg, pid := startRaw(t, 0)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitfor.Within(t, 10*time.Second, "the sandbox init to die", func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(filepath.Join(dir, "sandbox.env")); err != nil {
		t.Fatalf("state dir of the dead sandbox: %v", err)
	}
	// A start on the stale state dir cleans it first.
	_, _, pid2 := startRawIn(t, dir, cg, 0)
	if pid2 == pid {
		t.Fatalf("same init pid %d after restart", pid)
	}
	syscall.Kill(pid2, syscall.SIGKILL)
	waitfor.Within(t, 10*time.Second, "the second sandbox init to die", func() bool { return syscall.Kill(pid2, 0) != nil })
	if out, err := script(t, dir, cg, 0, "gc"); err != nil || !strings.Contains(out, "removing stale sandbox "+dir) {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	assertGone(t, dir, cg, pid2)
}

// A sandbox whose owner and watcher were both killed keeps running until
// gc stops it.
func TestGCOrphan(t *testing.T) {
	owner := exec.Command("sleep", "300")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer owner.Process.Kill()
	dir, cg, pid := startRaw(t, owner.Process.Pid)
	b, err := os.ReadFile(filepath.Join(dir, "watcher.pid"))
	if err != nil {
		t.Fatal(err)
	}
	watcher, _ := strconv.Atoi(strings.Fields(string(b))[0])
	if err := syscall.Kill(watcher, syscall.SIGKILL); err != nil {
		t.Fatalf("kill watcher %d: %v", watcher, err)
	}
	owner.Process.Kill()
	owner.Wait()
	if out, err := script(t, dir, cg, 0, "gc"); err != nil || !strings.Contains(out, "removing stale sandbox "+dir) {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	assertGone(t, dir, cg, pid)
}

func startRaw(t *testing.T, owner int) (dir, cg string, pid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "systemdtest: needs root to boot systemd in namespaces")
	}
	d, err := os.MkdirTemp("", "sdtest-")
	if err != nil {
		t.Fatal(err)
	}
	return startRawIn(t, d, filepath.Base(d), owner)
}

func startRawIn(t *testing.T, dir, cg string, owner int) (string, string, int) {
	t.Helper()
	t.Cleanup(func() {
		script(t, dir, cg, 0, "stop")
		os.Remove(dir)
	})
	out, err := script(t, dir, cg, owner, "start")
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == exitUnsupported {
		skipOrFail(t, "systemdtest: "+strings.TrimSpace(out))
	}
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	out, err = script(t, dir, cg, owner, "env")
	if err != nil {
		t.Fatalf("env: %v\n%s", err, out)
	}
	pid, err := strconv.Atoi(parseEnv(out)["SDTEST_INIT_PID"])
	if err != nil {
		t.Fatalf("env: %q", out)
	}
	return dir, cg, pid
}

func script(t *testing.T, dir, cg string, owner int, args ...string) (string, error) {
	t.Helper()
	sh, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{sh}, args...)...)
	cmd.Env = append(os.Environ(), "SDTEST_DIR="+dir, "SDTEST_CGROUP="+cg, "SDTEST_SHARE=")
	if owner != 0 {
		cmd.Env = append(cmd.Env, "SDTEST_OWNER_PID="+strconv.Itoa(owner))
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// assertGone checks that a stopped sandbox left no process, cgroup, state
// dir or registry entry.
func assertGone(t *testing.T, dir, cg string, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); err == nil {
		if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); strings.Contains(string(b), "systemd") {
			t.Errorf("sandbox init %d still running", pid)
		}
	}
	for _, p := range []string{dir, "/sys/fs/cgroup/" + cg, "/sys/fs/cgroup/unified/" + cg,
		"/sys/fs/cgroup/systemd/" + cg, "/run/systemd-sandbox/" + cg} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
}
