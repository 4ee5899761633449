// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package systemdtest gives tests a real systemd --system to drive over
// D-Bus, on machines whose PID 1 is not systemd. Start boots one with
// hack/systemd-sandbox.sh as PID 1 of private pid/mount/net/uts/ipc
// namespaces, with its root an overlay of the host's / (writes vanish at
// stop) and its own delegated cgroup2 subtree; the test's Cleanup powers it
// off and removes every trace.
//
// Host processes (the test, or a reconciled daemon the test runs) reach it
// through the sandbox init's /proc/<pid>/root: BusAddress is the system
// bus there, UnitDir its /etc/systemd/system. Paths inside the guest are
// the host's, except /tmp, /run and /dev, which are its own: put files that
// units must see in ShareDir (same path on both sides) or the repository
// (shared read-write at the same path).
//
// Start needs root; it skips the test when the machine cannot run a sandbox
// (not root, no systemd or dbus-daemon, no cgroup2, no namespaces or
// overlayfs), unless SDTEST_REQUIRE=1, and fails the test when the machine
// can but the sandbox does not come up.
package systemdtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/internal/fixture"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// StartTimeout bounds how long Start waits for the sandbox to boot.
const StartTimeout = 60 * time.Second

// exitUnsupported is the script's exit status for "this machine cannot".
const exitUnsupported = 3

// pathChars are the characters the script takes in paths.
const pathChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-"

// guestPath is PATH for commands run inside the sandbox.
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Sandbox is a running systemd --system in private namespaces. Its fields
// are what a host process needs to reach it.
type Sandbox struct {
	// InitPID is the host pid of the sandbox's PID 1 (systemd).
	InitPID int
	// Root is the guest's / seen from the host: /proc/<InitPID>/root.
	Root string
	// BusAddress is the guest's system bus, for a host process:
	// unix:path=/proc/<InitPID>/root/run/dbus/system_bus_socket.
	BusAddress string
	// UnitDir is the host path of the guest's /etc/systemd/system.
	UnitDir string
	// ShareDir is a host directory seen at the same path inside the guest
	// (for binaries and scripts that units run); removed at stop.
	ShareDir string
	// Dir and Cgroup are the sandbox's state dir and cgroup name
	// (SDTEST_DIR, SDTEST_CGROUP of the script).
	Dir, Cgroup string
	// Boot is how long `hack/systemd-sandbox.sh start` took.
	Boot time.Duration
	// RuntimeDir and ConfigHome are XDG_RUNTIME_DIR and XDG_CONFIG_HOME
	// of a user-mode sandbox (StartUser).
	RuntimeDir, ConfigHome string

	mode string

	script string
	env    []string
	t      fixture.TB

	stopOnce sync.Once
	stopErr  error
}

var gcOnce sync.Once

// Start boots a sandbox for t and registers its stop with t.Cleanup.
func Start(t fixture.TB) *Sandbox {
	t.Helper()
	return start(t, "system")
}

// StartUser boots a confined `systemd --user` with its own session bus
// (the script's MODE=user; no namespaces). BusAddress is that session bus,
// UnitDir its $XDG_CONFIG_HOME/systemd/user; Root and InitPID's namespaces
// are the host's. Give a daemon DBUS_SESSION_BUS_ADDRESS=BusAddress and
// XDG_CONFIG_HOME=ConfigHome to drive it.
func StartUser(t fixture.TB) *Sandbox {
	t.Helper()
	return start(t, "user")
}

func start(t fixture.TB, mode string) *Sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "systemdtest: needs root to boot systemd in namespaces")
	}
	script, err := Script()
	if err != nil {
		t.Fatalf("systemdtest: %v", err)
	}
	// The repository is shared read-write at the same path (without it the
	// guest sees it only through its overlay, where writes are lost, and not
	// at all when it lives under /tmp). The script takes plain paths only.
	repo := filepath.Dir(filepath.Dir(script))
	if strings.ContainsFunc(repo, func(r rune) bool { return !strings.ContainsRune(pathChars, r) }) {
		repo = ""
	}
	dir, err := os.MkdirTemp("", "sdtest-")
	if err != nil {
		t.Fatalf("systemdtest: %v", err)
	}
	s := &Sandbox{Dir: dir, Cgroup: filepath.Base(dir), script: script, t: t, mode: mode}
	s.env = append(os.Environ(),
		"MODE="+mode,
		"SDTEST_DIR="+dir,
		"SDTEST_CGROUP="+s.Cgroup,
		"SDTEST_SHARE="+repo,
		// The script leaves a watcher that stops the sandbox once this
		// process is gone, so a test binary that is killed (go test
		// -timeout, ^C) leaves nothing running.
		"SDTEST_OWNER_PID="+strconv.Itoa(os.Getpid()),
	)
	gcOnce.Do(func() { // sandboxes of earlier runs that were killed along with their watcher
		if out, err := s.run(context.Background(), "gc"); err != nil || !strings.Contains(out, ": 0 removed") {
			t.Logf("systemdtest: gc: %s %v", strings.TrimSpace(out), err)
		}
	})
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("systemdtest: stop: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	t0 := time.Now()
	out, err := s.run(ctx, "start")
	s.Boot = time.Since(t0)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == exitUnsupported {
		skipOrFail(t, "systemdtest: "+strings.TrimSpace(out))
	}
	if err != nil {
		t.Fatalf("systemdtest: start: %v\n%s", err, out)
	}
	out, err = s.run(ctx, "env")
	if err != nil {
		t.Fatalf("systemdtest: env: %v\n%s", err, out)
	}
	vars := parseEnv(out)
	s.InitPID, err = strconv.Atoi(vars["SDTEST_INIT_PID"])
	if err != nil {
		t.Fatalf("systemdtest: env: no init pid in %q", out)
	}
	s.UnitDir = vars["SDTEST_UNIT_DIR"]
	if mode == "user" {
		s.BusAddress = vars["DBUS_SESSION_BUS_ADDRESS"]
		s.RuntimeDir = vars["XDG_RUNTIME_DIR"]
		s.ConfigHome = filepath.Join(dir, "config")
		return s
	}
	s.Root = vars["SDTEST_ROOT"]
	s.BusAddress = vars["DBUS_SYSTEM_BUS_ADDRESS"]
	s.ShareDir = vars["SDTEST_SHARE_DIR"]
	return s
}

// Systemctl runs systemctl against the sandbox's manager (inside its
// namespaces, or with --user and its session bus) and returns the trimmed
// output; commands like is-active exit non-zero for a negative answer, so
// the error is only for the caller who wants it.
func (s *Sandbox) Systemctl(args ...string) (string, error) {
	if s.mode != "user" {
		out, err := s.Exec(append([]string{"systemctl"}, args...)...)
		return strings.TrimSpace(out), err
	}
	cmd := exec.Command("systemctl", append([]string{"--user"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+s.RuntimeDir, "XDG_CONFIG_HOME="+s.ConfigHome, "DBUS_SESSION_BUS_ADDRESS="+s.BusAddress, "SYSTEMD_PAGER=cat")
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func skipOrFail(t fixture.TB, reason string) {
	t.Helper()
	fixture.SkipOrFail(t, reason, "SDTEST_REQUIRE")
}

// run runs the script with a subcommand and returns its combined output.
func (s *Sandbox) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.script}, args...)...)
	cmd.Env = s.env
	cmd.Dir = "/"
	cmd.WaitDelay = 5 * time.Second // a background child holding the pipes must not hang us
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func parseEnv(out string) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "), "=")
		if ok {
			vars[k] = v
		}
	}
	return vars
}

// Stop powers the sandbox off and removes its state dir, cgroup and
// registry entry. It is idempotent; t.Cleanup calls it too.
func (s *Sandbox) Stop() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := s.run(ctx, "stop"); err != nil {
			s.stopErr = fmt.Errorf("%v\n%s", err, out)
			return
		}
		if err := os.Remove(s.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.stopErr = err // the script removes what it made: what is left is not ours
		}
	})
	return s.stopErr
}

// Exec runs a command inside the sandbox (all its namespaces, / as working
// directory, a clean environment) and returns its standard output; the
// error carries the exit status and standard error.
func (s *Sandbox) Exec(args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("systemdtest: Exec needs a command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(s.InitPID), "-a", "--wd=/",
		"env", "-i", "PATH=" + guestPath, "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=cat"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Conn connects to systemd through the sandbox's system bus (dbus-daemon),
// as a daemon on a real host would; the connection is closed at cleanup
// or when ctx is done. (systemd's private socket, /run/systemd/private,
// is no way in from the host: systemd refuses peers outside its pid
// namespace, whose SO_PEERCRED pid reads 0.)
func (s *Sandbox) Conn(ctx context.Context) (*sddbus.Conn, error) {
	c, err := Connect(ctx, s.BusAddress)
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(c.Close)
	return c, nil
}

// Connect returns a go-systemd connection to systemd through the D-Bus
// bus at addr ("unix:path=..."), authenticating with EXTERNAL as the
// current uid: what NewSystemConnectionContext does for the default
// system bus, and what a daemon given a bus address would do.
func Connect(ctx context.Context, addr string) (*sddbus.Conn, error) {
	return systemd.Dial(ctx, addr)
}

// WriteUnit writes a unit file into the guest's /etc/systemd/system
// (a daemon-reload makes systemd see it).
func (s *Sandbox) WriteUnit(name, content string) error {
	return os.WriteFile(filepath.Join(s.UnitDir, name), []byte(content), 0o644)
}

// Journal returns the messages of a unit in the guest's journal
// (journalctl -u UNIT -o cat), its own output and systemd's lines about it.
func (s *Sandbox) Journal(unit string) (string, error) {
	return s.Exec("journalctl", "--no-pager", "-q", "-o", "cat", "-u", unit)
}

// Script returns the path of hack/systemd-sandbox.sh: found by walking up
// from the working directory to the module root (go.mod), or else next to
// this source file.
func Script() (string, error) {
	const rel = "hack/systemd-sandbox.sh"
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if _, err := os.Stat(filepath.Join(d, rel)); err == nil {
					return filepath.Join(d, rel), nil
				}
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", rel)
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", fmt.Errorf("cannot find %s above the working directory", rel)
}
