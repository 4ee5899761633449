// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package supervise

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// SpawnOptions describes one program to start.
type SpawnOptions struct {
	// Argv is the command line. Argv[0] without a slash is looked up with
	// exec.LookPath semantics in the PATH of Env, or in the daemon's PATH
	// when Env has none; a relative result (from an empty or relative PATH
	// element) is refused with exec.ErrDot. Argv[0] with a slash is used as
	// is, relative to Dir.
	Argv []string
	// Dir is the working directory; "" inherits the daemon's.
	Dir string
	// Env is the complete environment as KEY=VALUE entries; nil means an
	// empty environment, not the daemon's. When a key repeats, the last
	// entry wins, as with os/exec.
	Env []string
	// Credential sets the user and groups to run as; nil keeps the daemon's.
	Credential *syscall.Credential
	// Stdout is the file standard output is appended to, opened
	// O_WRONLY|O_APPEND|O_CREATE with mode 0640 after creating missing
	// parent directories with mode 0750; "" means /dev/null. The file is
	// opened by the daemon, with the daemon's credentials.
	Stdout string
	// Stderr is the same for standard error; it may equal Stdout, and then
	// both share one open file.
	Stderr string
	// StdoutFile and StderrFile, when set, are used instead of Stdout and
	// Stderr (see OpenOutput for files named by the user); Spawn does not
	// close them.
	StdoutFile, StderrFile *os.File
	// ExtraFiles are passed to the program as file descriptors 3, 4, ...
	// (a nil entry leaves that descriptor closed). As with os/exec, they are
	// switched to blocking mode.
	ExtraFiles []*os.File
	// SetListenPID gives the program LISTEN_PID, equal to its own pid, for
	// socket activation (LISTEN_FDS and LISTEN_FDNAMES are up to Env). The
	// child execs the daemon's own binary first, as a shim that sets it
	// and execs the program: the binary must call RunListenShim first
	// thing in main.
	SetListenPID bool
}

// Child is a started program.
type Child struct {
	// Pid is the process id, which is also its process group id. Pass it
	// to Reaper.WatchChild: until the child is reaped, its pid cannot be
	// reused.
	Pid int
	// StartTime is field 22 of /proc/<pid>/stat (clock ticks since boot),
	// for detecting pid reuse; see OpenPidFD.
	StartTime uint64
}

// inheritedOnce marks the inherited descriptors once.
var inheritedOnce sync.Once

// closeInheritedOnExec sets close-on-exec on every descriptor above 2:
// Go opens everything so, but descriptors the process inherited without
// it would reach every program. Children get their descriptors through
// dup2 (0-2, ExtraFiles), which clears the flag on the copies.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// Spawn starts the program described by o, in a new process group whose id
// is the program's pid, with standard input from /dev/null and standard
// output and error going to files, so that it does not depend on the daemon
// and survives it.
//
// Spawn uses syscall.ForkExec, not os/exec, so no goroutine waits for the
// child, and it keeps no descriptor for it: the caller learns of its exit
// through Reaper.WatchChild. As with os/exec, the
// child starts with the signal mask the daemon had at start-up and with the
// signals the Go runtime handles reset to their default dispositions; no
// descriptor other than 0, 1, 2 and ExtraFiles is inherited, since everything
// the daemon opens is close-on-exec, and the descriptors the daemon itself
// inherited (from a shell, a test runner) are made so before the first
// spawn.
//
// Spawn either returns a running (or already exited but unreaped) child, or
// an error and no child. It is safe to call concurrently.
func Spawn(o SpawnOptions) (Child, error) {
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return Child{}, errors.New("spawn: empty command")
	}
	inheritedOnce.Do(closeInheritedOnExec)
	if o.Dir != "" {
		fi, err := os.Stat(o.Dir)
		if err != nil {
			return Child{}, fmt.Errorf("spawn %q: working directory: %w", o.Argv[0], err)
		}
		if !fi.IsDir() {
			return Child{}, fmt.Errorf("spawn %q: working directory %q is not a directory", o.Argv[0], o.Dir)
		}
	}
	env := dedupEnv(o.Env)
	path, err := lookPath(o.Argv[0], o.Dir, env)
	if err != nil {
		return Child{}, err
	}

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return Child{}, fmt.Errorf("spawn %q: %w", o.Argv[0], err)
	}
	defer devnull.Close()
	stdout, stderr := devnull, devnull
	if o.StdoutFile != nil {
		stdout = o.StdoutFile
	} else if o.Stdout != "" {
		f, err := openLog(o.Stdout)
		if err != nil {
			return Child{}, fmt.Errorf("spawn %q: stdout: %w", o.Argv[0], err)
		}
		defer f.Close()
		stdout = f
	}
	if o.StderrFile != nil {
		stderr = o.StderrFile
	} else if o.Stderr != "" {
		if o.Stdout != "" && filepath.Clean(o.Stderr) == filepath.Clean(o.Stdout) {
			stderr = stdout
		} else {
			f, err := openLog(o.Stderr)
			if err != nil {
				return Child{}, fmt.Errorf("spawn %q: stderr: %w", o.Argv[0], err)
			}
			defer f.Close()
			stderr = f
		}
	}

	files := make([]uintptr, 0, 3+len(o.ExtraFiles))
	files = append(files, devnull.Fd(), stdout.Fd(), stderr.Fd())
	for _, f := range o.ExtraFiles {
		if f == nil {
			files = append(files, ^uintptr(0)) // closed in the child
			continue
		}
		files = append(files, f.Fd())
	}

	attr := &syscall.ProcAttr{
		Dir:   o.Dir,
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setpgid:    true, // Pgid 0: the child's pid
			Credential: o.Credential,
		},
	}
	execPath, argv := path, o.Argv
	if o.SetListenPID {
		execPath, argv = selfExe, listenShimArgv(path, o.Argv)
		attr.Env = withoutListenPID(env)
	}
	pid, err := syscall.ForkExec(execPath, argv, attr)
	runtime.KeepAlive(o.ExtraFiles)
	if err != nil {
		return Child{}, fmt.Errorf("spawn %q: %w", o.Argv[0], err)
	}

	// Until the child is reaped, which only a Reaper does, its pid cannot
	// be reused, so the pid-based call below is safe.
	st, err := ProcStartTime(pid)
	if err != nil {
		abandon(pid)
		return Child{}, fmt.Errorf("spawn %q: %w", o.Argv[0], err)
	}
	return Child{Pid: pid, StartTime: st}, nil
}

// MarkInheritedCloseOnExec marks every file descriptor above 2 of the daemon
// close-on-exec, so that descriptors the daemon inherited from whatever started
// it (a pipe from a shell script, for example) do not leak into supervised
// programs, where they could keep that pipe open for as long as the programs
// run. Descriptors the daemon opens itself through the os and syscall
// packages are close-on-exec already. Call it once, early in the daemon's
// start-up.
func MarkInheritedCloseOnExec() error {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open descriptors: %w", err)
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return fmt.Errorf("list open descriptors: %w", err)
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 {
			continue
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == syscall.EBADF {
			continue // the descriptor of the listing itself, closed since
		}
		if errno != 0 {
			return fmt.Errorf("get flags of descriptor %d: %w", fd, errno)
		}
		if flags&syscall.FD_CLOEXEC != 0 {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, flags|syscall.FD_CLOEXEC); errno != 0 {
			return fmt.Errorf("mark descriptor %d close-on-exec: %w", fd, errno)
		}
	}
	return nil
}

// abandon kills and reaps a child that Spawn cannot return. The wait is
// short because SIGKILL cannot be caught.
func abandon(pid int) {
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for {
		if _, err := syscall.Wait4(pid, nil, 0, nil); err != syscall.EINTR {
			break
		}
	}
}

// openLog opens (creating it and its parent directories if needed) a file
// that a child's output is appended to. Like every file the os package opens,
// it is close-on-exec in the daemon.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// lookPath resolves argv0 the way exec.LookPath does, but against the PATH in
// env (the daemon's PATH when env has none) and, for a relative argv0 with a
// slash, relative to dir. Errors are *exec.Error values, such as
// `exec: "foo": executable file not found in $PATH`.
func lookPath(argv0, dir string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		path := argv0
		if dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if err := findExecutable(path); err != nil {
			return "", &exec.Error{Name: argv0, Err: err}
		}
		return path, nil
	}
	pathEnv, ok := getenv(env, "PATH")
	if !ok {
		pathEnv = os.Getenv("PATH")
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "." // Unix shell semantics: an empty element is the current directory
		}
		path := filepath.Join(d, argv0)
		found := path
		if dir != "" && !filepath.IsAbs(path) {
			found = filepath.Join(dir, path) // where the child, after chdir, would find it
		}
		if findExecutable(found) == nil {
			if !filepath.IsAbs(path) {
				return "", &exec.Error{Name: argv0, Err: exec.ErrDot}
			}
			return path, nil
		}
	}
	return "", &exec.Error{Name: argv0, Err: exec.ErrNotFound}
}

// findExecutable reports whether path is a regular file with an execute bit.
func findExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	if fi.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// getenv returns the value of key in env.
func getenv(env []string, key string) (string, bool) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// dedupEnv drops the entries of env whose key appears again later, so that
// the last value wins as with os/exec (programs would otherwise see the
// first). It returns env itself when there is nothing to drop.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	keep := make([]bool, len(env))
	dups := false
	for i := len(env) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(env[i], "=")
		if seen[k] {
			dups = true
			continue
		}
		seen[k] = true
		keep[i] = true
	}
	if !dups {
		return env
	}
	out := make([]string, 0, len(seen))
	for i, kv := range env {
		if keep[i] {
			out = append(out, kv)
		}
	}
	return out
}
