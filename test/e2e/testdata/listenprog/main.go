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
//	    connloop.Run: connect, send a line and read the answer, one
//	    connection after another; after each answer from a server pid not
//	    killed yet, kill it with SIGKILL, N times; stop at the first answer
//	    after the last kill. Print the connloop.Result as one JSON line.
//	    Pids are those of the client's pid namespace: run it in the
//	    server's.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/reconciled/reconciled/test/fixtures/connloop"
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

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "server address: tcp://HOST:PORT or unix:///PATH")
	kills := fs.Int("kills", 100, "servers to kill")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	network, address := splitAddr(*addr)
	r := connloop.Run(network, address, *kills, *timeout)
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Kills < *kills {
		os.Exit(1)
	}
}
