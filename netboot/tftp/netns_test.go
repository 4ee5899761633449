// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	peers "github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/netnstest"
	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// Environment of the test binary when it runs as a server (see
// runTestServer): pin/tftp opens a socket per transfer, so the server must
// run as a whole process inside the server namespace.
const (
	envServe  = "TFTPTEST_SERVE"  // listen address; set: act as the server
	envRoot   = "TFTPTEST_ROOT"   // Options.Root
	envSerial = "TFTPTEST_SERIAL" // "ip=serial,ip=serial"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(envServe); addr != "" {
		os.Exit(runTestServer(addr))
	}
	os.Exit(m.Run())
}

// runTestServer serves $TFTPTEST_ROOT on addr until SIGTERM or SIGINT.
func runTestServer(addr string) int {
	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-1)}))
	serials := map[string]string{}
	for _, kv := range strings.Split(os.Getenv(envSerial), ",") {
		if ip, serial, ok := strings.Cut(kv, "="); ok {
			serials[ip] = serial
		}
	}
	s, err := New(Options{
		Addr: addr,
		Root: os.Getenv(envRoot),
		Serial: func(ip net.IP) (string, bool) {
			serial, ok := serials[ip.String()]
			return serial, ok
		},
		OnContact: func(ip net.IP, p string) { log.Info("contact", "remote", ip.String(), "path", p) },
		Log:       log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := s.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startNetnsServer runs this test binary as a TFTP server on addr inside
// namespace ns and waits (bounded) until client namespace cli gets
// ready.txt from it over url. It stops the server at cleanup.
func startNetnsServer(t *testing.T, nw *netnstest.Net, ns, cli, addr, root, serials, url string, env ...string) *syncbuf.Buffer {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(root, "ready.txt"), []byte("ready\n"), 0o644))
	cmd := nw.Command(ns, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envServe+"="+addr, envRoot+"="+root, envSerial+"="+serials)
	cmd.Env = append(cmd.Env, env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // ip netns exec execs the server itself
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("server in %s did not stop within 15s of SIGTERM", ns)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("server %s log (tail):\n%s", addr, tail(out.String(), 3000))
		}
	})
	waitTFTPReady(t, nw, cli, url, func() string {
		select {
		case <-exited:
			t.Fatalf("server exited before answering: %s", out.String())
		default:
		}
		return out.String()
	})
	return out
}

// waitTFTPReady polls url/ready.txt with curl from the namespace cli until
// it answers "ready" (the test servers serve that file), failing t after
// 15 s with what log() returns. log may also fail t itself, when the
// server is known to be gone.
func waitTFTPReady(t *testing.T, nw *netnstest.Net, cli, url string, log func() string) {
	t.Helper()
	var last string
	defer func() { // runs on the Fatal too
		if t.Failed() {
			t.Logf("last try: %s", last)
		}
	}()
	waitfor.Within(t, 15*time.Second, "the TFTP server at "+url+" to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		got, err := nw.Exec(ctx, cli, "curl", "-sS", "--max-time", "1", url+"/ready.txt")
		if err == nil && got == "ready\n" {
			return true
		}
		last = fmt.Sprintf("%v %s; server: %s", err, got, log())
		time.Sleep(50 * time.Millisecond) // paces the curls: a refused request fails at once
		return false
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func writeRandom(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestNetns serves a root from the server namespace of a private network
// and downloads from a client namespace with curl, as a Pi would.
func TestNetns(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		peers.SkipOrFail(t, "curl is not installed")
	}
	nw := netnstest.New(t, 1)
	nw.SetClientAddr(0, "10.77.0.10")
	cli := nw.Clients[0]
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must(t, os.MkdirAll(filepath.Join(root, "c0ffee01"), 0o755))
	secret := filepath.Join(dir, "secret.txt")
	must(t, os.WriteFile(secret, []byte(secretText), 0o644))
	must(t, os.Symlink(secret, filepath.Join(root, "escape")))
	writeRandom(t, filepath.Join(root, "start4.elf"), 2_270_000)
	must(t, os.WriteFile(filepath.Join(root, "cmdline.txt"), []byte("shared\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "c0ffee01", "cmdline.txt"), []byte("this pi\n"), 0o644))
	writeRandom(t, filepath.Join(root, "big.bin"), 64<<20)

	url := "tftp://" + nw.ServerIP
	startNetnsServer(t, nw, nw.Server, cli, nw.ServerIP+":69", root, "10.77.0.10=c0ffee01", url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	curl := func(args ...string) (string, error) {
		return nw.Exec(ctx, cli, append([]string{"curl", "-sS", "--max-time", "60"}, args...)...)
	}

	t.Run("download", func(t *testing.T) {
		for name, c := range map[string]struct {
			file string
			args []string
		}{
			"default blksize":    {file: "start4.elf"},
			"blksize 1468":       {file: "start4.elf", args: []string{"--tftp-blksize", "1468"}},
			"64MiB blksize 1468": {file: "big.bin", args: []string{"--tftp-blksize", "1468"}},
		} {
			t.Run(name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				start := time.Now()
				if msg, err := curl(append(c.args, "-o", out, url+"/"+c.file)...); err != nil {
					t.Fatalf("curl: %v %s", err, msg)
				}
				if got, want := fileSHA(t, out), fileSHA(t, filepath.Join(root, c.file)); got != want {
					t.Fatalf("sha256 %s, want %s", got, want)
				}
				st, _ := os.Stat(out)
				t.Logf("%s: %d bytes in %v", c.file, st.Size(), time.Since(start).Round(time.Millisecond))
			})
		}
	})

	t.Run("atftp windowsize 16", func(t *testing.T) {
		if _, err := exec.LookPath("atftp"); err != nil {
			peers.SkipOrFail(t, "atftp is not installed (make test installs it)")
		}
		out := filepath.Join(t.TempDir(), "out")
		start := time.Now()
		msg, err := nw.Exec(ctx, cli, "atftp", "--option", "blksize 1468", "--option", "windowsize 16", "--trace",
			"-g", "-r", "big.bin", "-l", out, nw.ServerIP, "69")
		if err != nil {
			t.Fatalf("atftp: %v %s", err, tail(msg, 2000))
		}
		if got, want := fileSHA(t, out), fileSHA(t, filepath.Join(root, "big.bin")); got != want {
			t.Fatalf("sha256 %s, want %s", got, want)
		}
		if !strings.Contains(msg, "windowsize: 16") {
			t.Fatalf("the server did not grant windowsize 16:\n%s", tail(msg, 2000))
		}
		t.Logf("big.bin in windows of 16: %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("options", func(t *testing.T) {
		// curl asks for tsize (and blksize when told); -v shows the OACK.
		out, err := curl("-v", "--tftp-blksize", "1468", "-o", "/dev/null", url+"/start4.elf")
		if err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
		for _, want := range []string{"got option=(tsize) value=(2270000)", "got option=(blksize) value=(1468)"} {
			if !strings.Contains(out, want) {
				t.Errorf("curl -v does not show %q:\n%s", want, out)
			}
		}
	})

	t.Run("per-pi folder", func(t *testing.T) {
		got, err := curl(url + "/cmdline.txt")
		if err != nil || got != "this pi\n" {
			t.Fatalf("got %q, %v; want this Pi's cmdline.txt", got, err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		// curl exits 68 (CURLE_TFTP_NOTFOUND) on a TFTP ERROR packet
		// with code 1 and 69 (CURLE_TFTP_PERM) on code 2, never on a
		// timeout; curl 7.88 prints a confusing getpeername message with
		// them.
		const notFound, access = 68, 69
		for name, tc := range map[string]struct {
			args []string
			exit int
		}{
			"dotdot":        {[]string{"--path-as-is", url + "/../secret.txt"}, access},
			"deep dotdot":   {[]string{"--path-as-is", url + "/c0ffee01/../../secret.txt"}, access},
			"encoded":       {[]string{url + "/%2e%2e/secret.txt"}, access},
			"absolute":      {[]string{url + "//etc/passwd"}, access},
			"symlink out":   {[]string{url + "/escape"}, access},
			"missing":       {[]string{url + "/nope"}, notFound},
			"encoded slash": {[]string{url + "/..%2fsecret.txt"}, access},
		} {
			t.Run(name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				msg, err := curl(append(tc.args, "-o", out)...)
				if err == nil {
					t.Fatalf("curl succeeded: %s", msg)
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != tc.exit {
					t.Fatalf("curl failed without a TFTP error of code %d: %v %s", tc.exit-67, err, msg)
				}
				if data, _ := os.ReadFile(out); bytes.Contains(data, []byte(secretText)) || bytes.Contains(data, []byte("root:")) {
					t.Fatalf("served %q", data)
				}
				t.Logf("%v: %s", err, strings.TrimSpace(msg))
			})
		}
	})
}
