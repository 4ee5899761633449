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

	"github.com/reconciled/reconciled/internal/netnstest"
	"github.com/reconciled/reconciled/internal/syncbuf"
)

// TestCompareTftpdHpa measures 64 MiB downloads with curl from a client
// namespace, over the veth and bridge of internal/netnstest, from
// tftpd-hpa and from this server in the same server namespace and the same
// run, alternating between them. It only runs with TFTP_BENCH=1 (it takes
// about a minute); TFTP_BENCH_REPS sets the rounds (default 5).
//
//	sudo TFTP_BENCH=1 go test -run TestCompareTftpdHpa -v ./controllers/pinode/tftp/
func TestCompareTftpdHpa(t *testing.T) {
	if os.Getenv("TFTP_BENCH") != "1" {
		t.Skip("set TFTP_BENCH=1 to compare with tftpd-hpa")
	}
	for _, bin := range []string{"curl", "in.tftpd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed", bin)
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		got, err := nw.Exec(ctx, cli, "curl", "-sS", "--max-time", "1", "tftp://"+nw.ServerIP+"/ready.txt")
		cancel()
		if err == nil && got == "ready\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tftpd-hpa did not answer: %v %s %s", err, got, hpaOut.String())
		}
	}

	servers := []struct{ name, url string }{
		{"tftpd-hpa", "tftp://" + nw.ServerIP + "/big.bin"},
		{"ours", "tftp://" + nw.ServerIP + ":1069/big.bin"},
	}
	type key struct{ server, blksize string }
	results := map[key][]float64{}
	out := filepath.Join(dir, "out.bin")
	for rep := range reps {
		for _, bs := range []string{"512", "1468"} {
			order := slices.Clone(servers)
			if rep%2 == 1 { // alternate who goes first, against drift
				slices.Reverse(order)
			}
			for _, s := range order {
				args := []string{"curl", "-sS", "--max-time", "120", "-o", out}
				if bs != "512" {
					args = append(args, "--tftp-blksize", bs)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 130*time.Second)
				start := time.Now()
				msg, err := nw.Exec(ctx, cli, append(args, s.url)...)
				d := time.Since(start)
				cancel()
				if err != nil {
					t.Fatalf("%s blksize %s: %v %s", s.name, bs, err, msg)
				}
				if got := fileSHA(t, out); got != want {
					t.Fatalf("%s blksize %s: sha256 %s, want %s", s.name, bs, got, want)
				}
				results[key{s.name, bs}] = append(results[key{s.name, bs}], float64(size)/(1<<20)/d.Seconds())
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "64 MiB, curl in the client namespace, %d rounds, MiB/s\n", reps)
	fmt.Fprintf(&b, "%-10s %-8s %7s %7s %7s  %s\n", "server", "blksize", "best", "median", "worst", "each round")
	for _, bs := range []string{"512", "1468"} {
		for _, s := range servers {
			all := results[key{s.name, bs}]
			r := slices.Sorted(slices.Values(all))
			fmt.Fprintf(&b, "%-10s %-8s %7.1f %7.1f %7.1f  %.1f\n", s.name, bs, r[len(r)-1], r[len(r)/2], r[0], all)
		}
		// Rounds run the two back to back, so the ratio within a round
		// is steadier than either figure on a shared machine.
		var ratios []float64
		for i, ours := range results[key{"ours", bs}] {
			ratios = append(ratios, ours/results[key{"tftpd-hpa", bs}][i])
		}
		slices.Sort(ratios)
		fmt.Fprintf(&b, "ours/tftpd-hpa at %s, median of the rounds: %.2f (from %.2f to %.2f)\n", bs, ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	t.Log("\n" + b.String())
}
