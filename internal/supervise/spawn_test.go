// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package supervise

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

func TestSpawnExitCode(t *testing.T) {
	r := newReaper(t)
	p := start(t, r, SpawnOptions{Argv: []string{"/bin/sh", "-c", "exit 3"}})
	st := p.wait(t)
	want := ExitStatus{Known: true, ExitCode: 3, At: st.At}
	if st != want {
		t.Errorf("exit status = %+v, want %+v", st, want)
	}
	if got := st.String(); got != "exit status 3" {
		t.Errorf("String() = %q, want %q", got, "exit status 3")
	}
	if st.At.IsZero() {
		t.Error("At is zero")
	}
}

func TestSpawnProcessAttributes(t *testing.T) {
	// Whatever started the test may have left descriptors without
	// close-on-exec; they must not reach the child either.
	if err := MarkInheritedCloseOnExec(); err != nil {
		t.Fatal(err)
	}
	r := newReaper(t)
	p := start(t, r, SpawnOptions{Argv: []string{"sleep", "30"}})
	// Wait for the exec to complete, so that the checks see sleep and not
	// the forked daemon.
	eventually(t, "sleep to be running", func() bool {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(p.Pid) + "/exe")
		return filepath.Base(exe) == "sleep"
	})

	info, err := readStat(p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if info.Pgid != p.Pid {
		t.Errorf("process group = %d, want the child's pid %d", info.Pgid, p.Pid)
	}
	if info.StartTime != p.StartTime || p.StartTime == 0 {
		t.Errorf("start time = %d, Child.StartTime = %d", info.StartTime, p.StartTime)
	}

	fdDir := "/proc/" + strconv.Itoa(p.Pid) + "/fd"
	fds, err := readDirNames(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fds)
	if want := []string{"0", "1", "2"}; !slices.Equal(fds, want) {
		t.Errorf("child's open descriptors = %v, want %v (nothing leaked)", fds, want)
	}
	for _, fd := range []string{"0", "1", "2"} {
		if target, _ := os.Readlink(fdDir + "/" + fd); target != os.DevNull {
			t.Errorf("fd %s -> %q, want %s", fd, target, os.DevNull)
		}
	}

	status := readFile(t, "/proc/"+strconv.Itoa(p.Pid)+"/status")
	if !strings.Contains(status, "\nSigBlk:\t0000000000000000\n") {
		t.Errorf("child has blocked signals:\n%s", status)
	}

	if err := SignalGroup(p.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(t); !st.Known || st.Signal != syscall.SIGTERM {
		t.Errorf("exit status = %v, want killed by SIGTERM", st)
	}
}

func TestSpawnOutputFiles(t *testing.T) {
	r := newReaper(t)
	dir := filepath.Join(t.TempDir(), "logs", "prog")
	stdout, stderr := filepath.Join(dir, "out.log"), filepath.Join(dir, "err.log")
	p := start(t, r, SpawnOptions{
		Argv:   []string{"/bin/sh", "-c", "echo to-out; echo to-err >&2"},
		Stdout: stdout,
		Stderr: stderr,
	})
	if st := p.wait(t); !st.Success() {
		t.Fatalf("exit status = %v", st)
	}
	if got := readFile(t, stdout); got != "to-out\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := readFile(t, stderr); got != "to-err\n" {
		t.Errorf("stderr = %q", got)
	}
	for path, perm := range map[string]fs.FileMode{dir: 0o750, stdout: 0o640, stderr: 0o640} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^perm != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, fi.Mode().Perm(), perm)
		}
	}
}

func TestSpawnSharedOutputAppends(t *testing.T) {
	r := newReaper(t)
	log := filepath.Join(t.TempDir(), "both.log")
	for i := range 2 {
		n := strconv.Itoa(i)
		p := start(t, r, SpawnOptions{
			Argv:   []string{"/bin/sh", "-c", "echo out" + n + "; echo err" + n + " >&2"},
			Stdout: log,
			Stderr: log,
		})
		if st := p.wait(t); !st.Success() {
			t.Fatalf("exit status = %v", st)
		}
	}
	if got, want := readFile(t, log), "out0\nerr0\nout1\nerr1\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestSpawnEnvAndDir(t *testing.T) {
	r := newReaper(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	p := start(t, r, SpawnOptions{
		Argv:   []string{"sh", "-c", `echo "$FOO"; echo "${HOME-unset}"; pwd`},
		Dir:    dir,
		Env:    []string{"PATH=/usr/bin:/bin", "FOO=first", "FOO=last"},
		Stdout: out,
	})
	if st := p.wait(t); !st.Success() {
		t.Fatalf("exit status = %v", st)
	}
	if got, want := readFile(t, out), "last\nunset\n"+dir+"\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestSpawnLooksUpArgv0InEnvPATH(t *testing.T) {
	r := newReaper(t)
	bin := t.TempDir()
	script := "#!/bin/sh\necho \"hello from $0\"\n"
	if err := os.WriteFile(filepath.Join(bin, "supervise-test-prog"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	p := start(t, r, SpawnOptions{
		Argv:   []string{"supervise-test-prog"},
		Env:    []string{"PATH=/nonexistent:" + bin},
		Stdout: out,
	})
	if st := p.wait(t); !st.Success() {
		t.Fatalf("exit status = %v", st)
	}
	if got, want := readFile(t, out), "hello from "+filepath.Join(bin, "supervise-test-prog")+"\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}

	// Relative to Dir when Argv[0] has a slash.
	p = start(t, r, SpawnOptions{
		Argv:   []string{"./supervise-test-prog"},
		Dir:    bin,
		Stdout: out,
	})
	if st := p.wait(t); !st.Success() {
		t.Fatalf("exit status = %v", st)
	}
}

func TestSpawnErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    SpawnOptions
		wantErr error
		wantMsg string
	}{{
		name:    "no argv",
		opts:    SpawnOptions{},
		wantMsg: "empty command",
	}, {
		name:    "not in PATH",
		opts:    SpawnOptions{Argv: []string{"no-such-program-xyz"}, Env: []string{"PATH=/usr/bin:/bin"}},
		wantErr: exec.ErrNotFound,
		wantMsg: `exec: "no-such-program-xyz": executable file not found in $PATH`,
	}, {
		name:    "missing path",
		opts:    SpawnOptions{Argv: []string{"/nonexistent/prog"}},
		wantErr: fs.ErrNotExist,
		wantMsg: `exec: "/nonexistent/prog"`,
	}, {
		name:    "not executable",
		opts:    SpawnOptions{Argv: []string{filepath.Join(dir, "noexec")}},
		wantErr: fs.ErrPermission,
	}, {
		name:    "directory",
		opts:    SpawnOptions{Argv: []string{dir}},
		wantErr: syscall.EISDIR,
	}, {
		name:    "found only through a relative PATH element",
		opts:    SpawnOptions{Argv: []string{"prog"}, Dir: dir, Env: []string{"PATH=."}},
		wantErr: exec.ErrDot,
	}, {
		name:    "missing working directory",
		opts:    SpawnOptions{Argv: []string{"/bin/true"}, Dir: filepath.Join(dir, "missing")},
		wantErr: fs.ErrNotExist,
		wantMsg: "working directory",
	}, {
		name:    "unwritable log directory",
		opts:    SpawnOptions{Argv: []string{"/bin/true"}, Stdout: filepath.Join(dir, "noexec", "out.log")},
		wantErr: syscall.ENOTDIR,
		wantMsg: "stdout",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Spawn(tt.opts)
			if err == nil {
				_ = SignalGroup(c.Pid, syscall.SIGKILL)
				_, _ = syscall.Wait4(c.Pid, nil, 0, nil)
				t.Fatalf("Spawn succeeded, want error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestSpawnExtraFiles(t *testing.T) {
	r := newReaper(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	p := start(t, r, SpawnOptions{
		Argv:       []string{"/bin/sh", "-c", "echo via-fd-4 >&4"},
		ExtraFiles: []*os.File{nil, pw},
	})
	pw.Close() // the child has its own copy
	got, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "via-fd-4\n" {
		t.Errorf("read %q from the pipe", got)
	}
	if st := p.wait(t); !st.Success() {
		t.Errorf("exit status = %v", st)
	}
}

// SetListenPID: the program sees its own pid in LISTEN_PID (not one the
// environment carried), its argv unchanged and its descriptors from 3 on,
// also as another user (the shim is reached through /proc/self/exe).
func TestSpawnSetListenPID(t *testing.T) {
	r := newReaper(t)
	for _, cred := range []*syscall.Credential{nil, {Uid: 65534, Gid: 65534}} {
		if cred != nil && os.Getuid() != 0 {
			fixtures.SkipOrFail(t, "needs root to change user")
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p := start(t, r, SpawnOptions{
			Argv:         []string{"sh", "-c", `echo "$LISTEN_PID $$ $0 $1" >&3`, "zero", "one"},
			Env:          []string{"PATH=/usr/bin:/bin", "LISTEN_PID=1", "LISTEN_FDS=1"},
			Credential:   cred,
			ExtraFiles:   []*os.File{pw},
			SetListenPID: true,
		})
		pw.Close()
		got, _ := io.ReadAll(pr)
		pr.Close()
		if st := p.wait(t); !st.Success() {
			t.Fatalf("exit status = %v", st)
		}
		if want := fmt.Sprintf("%d %d zero one\n", p.Pid, p.Pid); string(got) != want {
			t.Errorf("credential %v: program wrote %q to fd 3, want %q", cred, got, want)
		}
	}
}

func TestSpawnCredential(t *testing.T) {
	if os.Getuid() != 0 {
		fixtures.SkipOrFail(t, "needs root to change user")
	}
	r := newReaper(t)
	out := filepath.Join(t.TempDir(), "out")
	p := start(t, r, SpawnOptions{
		Argv:       []string{"/bin/sh", "-c", "id -u; id -g"},
		Env:        []string{"PATH=/usr/bin:/bin"},
		Dir:        "/",
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
		Stdout:     out,
	})
	if st := p.wait(t); !st.Success() {
		t.Fatalf("exit status = %v", st)
	}
	if got := readFile(t, out); got != "65534\n65534\n" {
		t.Errorf("id output = %q", got)
	}
}

func TestDedupEnv(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, nil},
		{[]string{"A=1", "B=2"}, []string{"A=1", "B=2"}},
		{[]string{"A=1", "B=2", "A=3", "C", "C"}, []string{"B=2", "A=3", "C"}},
	}
	for _, tt := range tests {
		if got := dedupEnv(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("dedupEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkSpawnReap(b *testing.B) {
	r := newReaper(b)
	exited := make(chan ExitStatus, 1)
	notify := func(st ExitStatus) { exited <- st }
	for b.Loop() {
		c, err := Spawn(SpawnOptions{Argv: []string{"/bin/true"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.WatchChild(c.Pid, notify); err != nil {
			b.Fatal(err)
		}
		if st := <-exited; !st.Success() {
			b.Fatalf("exit status = %v", st)
		}
	}
}
