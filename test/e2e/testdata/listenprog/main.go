// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command listenprog is a socket-activated test server, and the client that
// measures what its users see while it is killed and restarted.
//
//	listenprog serve [-listen tcp://HOST:PORT|unix:///PATH]
//	    Serve on the sockets of socket activation (go-systemd's
//	    activation.Listeners, as a real service would), or, without any,
//	    on -listen, bound by itself (as under supervisord). Each connection
//	    gets one line back: "PID NAMES", NAMES being LISTEN_FDNAMES.
//	listenprog client -addr tcp://HOST:PORT|unix:///PATH -kills N [-timeout D]
//	    Connect, send a line and read the answer, one connection after
//	    another. After each answer from a server pid not killed yet, kill
//	    it with SIGKILL, N times; stop at the first answer after the last
//	    kill. Print one JSON line of counts (see result). Pids are those of
//	    the client's pid namespace: run it in the server's.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: listenprog serve|client ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: listenprog serve|client ...")
		os.Exit(2)
	}
}

// splitAddr turns tcp://HOST:PORT or unix:///PATH into a network and an address.
func splitAddr(s string) (string, string) {
	network, addr, ok := strings.Cut(s, "://")
	if !ok {
		fmt.Fprintf(os.Stderr, "listenprog: want tcp://HOST:PORT or unix:///PATH, not %q\n", s)
		os.Exit(2)
	}
	return network, addr
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "", "address to bind when no socket is passed")
	fs.Parse(args)
	names := os.Getenv("LISTEN_FDNAMES")
	ls, err := activation.Listeners()
	if err != nil {
		fmt.Fprintln(os.Stderr, "listenprog: activation:", err)
		os.Exit(1)
	}
	var live []net.Listener
	for _, l := range ls {
		if l != nil {
			live = append(live, l)
		}
	}
	if len(live) == 0 && *listen != "" {
		l, err := net.Listen(splitAddr(*listen))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listenprog:", err)
			os.Exit(1)
		}
		live = append(live, l)
		names = "self-bound"
	}
	if len(live) == 0 {
		fmt.Fprintln(os.Stderr, "listenprog: no socket passed (LISTEN_FDS, LISTEN_PID) and no -listen")
		os.Exit(1)
	}
	fmt.Printf("listenprog %d serving %d sockets (%s)\n", os.Getpid(), len(live), names)
	reply := fmt.Sprintf("%d %s\n", os.Getpid(), names)
	for _, l := range live[1:] {
		go accept(l, reply)
	}
	accept(live[0], reply)
}

func accept(l net.Listener, reply string) {
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "listenprog: accept:", err)
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
				c.Write([]byte(reply))
			}
		}()
	}
}

// result is what the client prints.
type result struct {
	// OK counts answered requests.
	OK int `json:"ok"`
	// Refused counts connections refused (ECONNREFUSED, or ENOENT for a
	// unix socket whose file is gone): nobody held the socket. The client
	// tries again every 10 ms.
	Refused int `json:"refused"`
	// Broken counts connections that were accepted and then lost (reset,
	// closed without an answer): a server killed while it served one.
	Broken int `json:"broken"`
	// Kills is how many servers were killed.
	Kills int `json:"kills"`
	// Pids counts the distinct servers that answered.
	Pids int `json:"pids"`
	// MaxWaitMS is the longest request (connect to answer), which spans a
	// restart when the socket is held.
	MaxWaitMS float64 `json:"maxWaitMs"`
	// ElapsedMS is the whole run.
	ElapsedMS float64 `json:"elapsedMs"`
	// LastError is the last error seen, if any.
	LastError string `json:"lastError,omitempty"`
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "server address: tcp://HOST:PORT or unix:///PATH")
	kills := fs.Int("kills", 100, "servers to kill")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	network, address := splitAddr(*addr)
	var r result
	start := time.Now()
	killed := map[int]bool{}
	seen := map[int]bool{}
	for time.Since(start) < *timeout {
		t0 := time.Now()
		pid, err := request(network, address)
		if err != nil {
			r.LastError = err.Error()
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
				r.Refused++
			} else {
				r.Broken++
			}
			// A client that retries every 10 ms sees every gap.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		r.OK++
		r.MaxWaitMS = max(r.MaxWaitMS, float64(time.Since(t0).Microseconds())/1000)
		if !seen[pid] {
			seen[pid] = true
			r.Pids++
		}
		if killed[pid] {
			continue // answered from its queue before it died
		}
		if r.Kills == *kills {
			break // the first answer after the last kill
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			r.LastError = fmt.Sprintf("kill %d: %v", pid, err)
			break
		}
		killed[pid] = true
		r.Kills++
	}
	r.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Kills < *kills {
		os.Exit(1)
	}
}

// request makes one connection and returns the pid that answered.
func request(network, address string) (int, error) {
	c, err := net.DialTimeout(network, address, 30*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("answer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, fmt.Errorf("answer %q", line)
	}
	return strconv.Atoi(f[0])
}
