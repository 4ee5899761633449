// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package tftp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	peers "github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/netnstest"
	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
)

// TestCompareTftpdHpa measures 64 MiB downloads with curl and atftp from a client
// namespace, over the veth and bridge of test/fixtures/netnstest, from
// tftpd-hpa and from this server in the same server namespace and the same
// run, alternating between them. It only runs with TFTP_BENCH=1 (it takes
// about a minute); TFTP_BENCH_REPS sets the rounds (default 5), and
// TFTP_BENCH_LOOPBACK=1 runs the clients in the servers' namespace, over
// loopback.
//
//	sudo TFTP_BENCH=1 go test -run TestCompareTftpdHpa -v ./netboot/tftp/
func TestCompareTftpdHpa(t *testing.T) {
	if os.Getenv("TFTP_BENCH") != "1" {
		t.Skip("set TFTP_BENCH=1 to compare with tftpd-hpa")
	}
	for _, bin := range []string{"curl", "in.tftpd"} {
		if _, err := exec.LookPath(bin); err != nil {
			peers.SkipOrFail(t, fmt.Sprintf("%s is not installed", bin))
		}
	}
	reps := 5
	if n, err := strconv.Atoi(os.Getenv("TFTP_BENCH_REPS")); err == nil && n > 0 {
		reps = n
	}
	nw := netnstest.New(t, 1)
	nw.SetClientAddr(0, "10.77.0.10")
	cli := nw.Clients[0]
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must(t, os.MkdirAll(root, 0o755))
	// tftpd-hpa drops to nobody: let it in.
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	const size = 64 << 20
	writeRandom(t, filepath.Join(root, "big.bin"), size)
	must(t, os.Chmod(filepath.Join(root, "big.bin"), 0o644))
	want := fileSHA(t, filepath.Join(root, "big.bin"))

	hpa := nw.Command(nw.Server, "in.tftpd", "-L", "-s", root, "-a", nw.ServerIP+":69", "-u", "nobody")
	hpaOut := &syncbuf.Buffer{}
	hpa.Stdout, hpa.Stderr = hpaOut, hpaOut
	if err := hpa.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hpa.Process.Kill(); _ = hpa.Wait() })
	startNetnsServer(t, nw, nw.Server, cli, nw.ServerIP+":1069", root, "", "tftp://"+nw.ServerIP+":1069")
	// tftpd-hpa answers once it reads ready.txt too (written above).
	waitTFTPReady(t, nw, cli, "tftp://"+nw.ServerIP, hpaOut.String)

	servers := []struct{ name, port string }{
		{"tftpd-hpa", "69"},
		{"ours", "1069"},
	}
	// The clients: curl in lock-step at two block sizes, and atftp (which
	// has RFC 7440) asking for a window of 16. tftpd-hpa does not know
	// windowsize and answers atftp in lock-step.
	clients := []struct {
		name string
		argv func(port, out string) []string
	}{
		{"curl 512", func(port, out string) []string {
			return []string{"curl", "-sS", "--max-time", "120", "-o", out, "tftp://" + nw.ServerIP + ":" + port + "/big.bin"}
		}},
		{"curl 1468", func(port, out string) []string {
			return []string{"curl", "-sS", "--max-time", "120", "--tftp-blksize", "1468", "-o", out, "tftp://" + nw.ServerIP + ":" + port + "/big.bin"}
		}},
	}
	if _, err := exec.LookPath("atftp"); err == nil {
		clients = append(clients, struct {
			name string
			argv func(port, out string) []string
		}{"atftp 1468 w16", func(port, out string) []string {
			return []string{"atftp", "--option", "blksize 1468", "--option", "windowsize 16", "-g", "-r", "big.bin", "-l", out, nw.ServerIP, port}
		}})
	} else {
		t.Log("atftp is not installed: no windowsize figures")
	}
	// TFTP_BENCH_LOOPBACK=1 runs the clients in the servers' namespace:
	// the packets to its own address go over loopback.
	from, where := cli, "to a client namespace over a veth and a bridge"
	if os.Getenv("TFTP_BENCH_LOOPBACK") == "1" {
		from, where = nw.Server, "over loopback (the clients in the servers' namespace)"
	}
	type key struct{ server, client string }
	results := map[key][]float64{}
	out := filepath.Join(dir, "out.bin")
	for rep := range reps {
		for _, c := range clients {
			order := slices.Clone(servers)
			if rep%2 == 1 { // alternate who goes first, against drift
				slices.Reverse(order)
			}
			for _, s := range order {
				os.Remove(out)
				ctx, cancel := context.WithTimeout(context.Background(), 130*time.Second)
				start := time.Now()
				msg, err := nw.Exec(ctx, from, c.argv(s.port, out)...)
				d := time.Since(start)
				cancel()
				if err != nil {
					t.Fatalf("%s from %s: %v %s", c.name, s.name, err, msg)
				}
				if got := fileSHA(t, out); got != want {
					t.Fatalf("%s from %s: sha256 %s, want %s", c.name, s.name, got, want)
				}
				results[key{s.name, c.name}] = append(results[key{s.name, c.name}], float64(size)/(1<<20)/d.Seconds())
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "64 MiB %s, %d rounds, MiB/s\n", where, reps)
	fmt.Fprintf(&b, "%-10s %-15s %7s %7s %7s  %s\n", "server", "client", "best", "median", "worst", "each round")
	for _, c := range clients {
		for _, s := range servers {
			all := results[key{s.name, c.name}]
			r := slices.Sorted(slices.Values(all))
			fmt.Fprintf(&b, "%-10s %-15s %7.1f %7.1f %7.1f  %.1f\n", s.name, c.name, r[len(r)-1], r[len(r)/2], r[0], all)
		}
		// Rounds run the two back to back, so the ratio within a round
		// is steadier than either figure on a shared machine.
		var ratios []float64
		for i, ours := range results[key{"ours", c.name}] {
			ratios = append(ratios, ours/results[key{"tftpd-hpa", c.name}][i])
		}
		slices.Sort(ratios)
		fmt.Fprintf(&b, "ours/tftpd-hpa with %s, median of the rounds: %.2f (from %.2f to %.2f)\n", c.name, ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	t.Log("\n" + b.String())
}
