// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package mqtttest runs a real MQTT broker, Debian's mosquitto, for tests:
// one listener on 127.0.0.1 with a free port, password authentication
// (anonymous clients are refused), no persistence. It can be stopped and
// started again on the same port, to play a broker that goes away, and the
// test's Cleanup always stops it.
//
// Start skips the test when mosquitto is not installed (make test installs
// it: hack/install-test-deps.sh), unless MQTTTEST_REQUIRE=1, which makes it
// fail instead.
package mqtttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/reconciled/reconciled/internal/fixture"
	"github.com/reconciled/reconciled/internal/syncbuf"
)

// StartTimeout bounds how long Start and Restart wait for the listener.
const StartTimeout = 15 * time.Second

// Broker is a running (or stopped) mosquitto.
type Broker struct {
	// Addr is the listener's host:port.
	Addr string
	// Username and Password are the one account the broker accepts.
	Username, Password string
	// PasswordFile holds Password and a newline, as a client's
	// passwordFile setting would.
	PasswordFile string

	t    fixture.TB
	bin  string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd       // nil while stopped
	done chan struct{}   // closed when cmd has exited
	out  *syncbuf.Buffer // its log
}

// Start runs a broker for the test; see the package doc for when it skips.
func Start(t fixture.TB) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			bin, err = "/usr/sbin/mosquitto", nil
		}
	}
	passwd, perr := exec.LookPath("mosquitto_passwd")
	if err != nil || perr != nil {
		fixture.SkipOrFail(t, "mosquitto is not installed (make test installs it: hack/install-test-deps.sh)", "MQTTTEST_REQUIRE")
	}
	dir := t.TempDir()
	b := &Broker{Username: "reconciled", Password: "s3cret-" + strconv.Itoa(os.Getpid()),
		PasswordFile: filepath.Join(dir, "password"), t: t, bin: bin,
		conf: filepath.Join(dir, "mosquitto.conf")}
	if err := os.WriteFile(b.PasswordFile, []byte(b.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hashed := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-c", "-b", hashed, b.Username, b.Password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	if err := os.Chmod(hashed, 0o600); err != nil {
		t.Fatal(err)
	}
	b.Addr = freeAddr(t)
	_, port, _ := net.SplitHostPort(b.Addr)
	conf := fmt.Sprintf("per_listener_settings false\nlistener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\n"+
		"persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n", port, hashed)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else mosquitto drops to a user that cannot read the temp dir
	}
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	b.Restart()
	return b
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t fixture.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// URL is the broker's address as mqtt://host:port.
func (b *Broker) URL() string { return "mqtt://" + b.Addr }

// ClientArgs are the mosquitto_pub and mosquitto_sub options that reach the
// broker with its account, over MQTT v5.
func (b *Broker) ClientArgs() []string {
	host, port, _ := net.SplitHostPort(b.Addr)
	return []string{"-h", host, "-p", port, "-u", b.Username, "-P", b.Password, "-V", "mqttv5"}
}

// Log returns what the running (or last) mosquitto logged.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out == nil {
		return ""
	}
	return b.out.String()
}

// Restart starts the broker on its address (again, after Stop) and waits
// until it accepts connections; it does nothing while the broker runs. It
// fails the test when mosquitto does not come up within StartTimeout.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		out := &syncbuf.Buffer{}
		cmd := exec.Command(b.bin, "-c", b.conf)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			b.t.Fatalf("start mosquitto: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		switch listening(b.Addr, done, deadline) {
		case nil:
			b.cmd, b.done, b.out = cmd, done, out
			return
		case errExited:
			// The port may still be held for a moment by the last run.
			if time.Now().After(deadline) {
				b.t.Fatalf("mosquitto exited at start (%v):\n%s", cmd.ProcessState, out.String())
			}
			time.Sleep(50 * time.Millisecond) // before binding again
		default:
			cmd.Process.Kill()
			<-done
			b.t.Fatalf("mosquitto did not listen on %s within %v:\n%s", b.Addr, StartTimeout, out.String())
		}
	}
}

var (
	errExited  = errors.New("exited")
	errTimeout = errors.New("timed out")
)

// listening waits until addr accepts a connection (nil), the process exits
// (errExited) or the deadline passes (errTimeout).
func listening(addr string, exited <-chan struct{}, deadline time.Time) error {
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
	}
}

// Stop stops the broker (SIGTERM, then SIGKILL after 5 s) and waits until
// it has exited; clients see their connections drop. It does nothing when
// the broker is stopped.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}
