// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// The netboot benchmarks need network namespaces and the peers in them
// (perfdhcp and dnsmasq, tftpd-hpa, snmpd, shell Pis), which the packages'
// own test harnesses already set up: these scenarios run those harnesses
// with their benchmark switches on and collect the figures they print.

// goTestBench runs one gated benchmark test and returns its output.
func goTestBench(pkg, run string, env ...string) string {
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout=20m", "-run", "^"+run+"$", pkg)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		fatalf("%s %s: %v\n%s", pkg, run, err, out)
	}
	return string(out)
}

// lines returns the lines of out matching re, trimmed.
func lines(out string, re *regexp.Regexp) []string {
	var res []string
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			res = append(res, strings.TrimSpace(l))
		}
	}
	return res
}

// dhcp: perfdhcp (relay mode) against our DHCP server and dnsmasq, side
// by side in the same run, leases on disk.
func (b *bench) dhcp() []row {
	rates := "1000,5000,10000"
	if *quick {
		rates = "1000"
	}
	out := goTestBench("./netboot/dhcp", "TestPerfdhcpVsDnsmasq",
		"RECONCILED_DHCP_BENCH=1", "RECONCILED_DHCP_BENCH_RATES="+rates, "RECONCILED_DHCP_BENCH_SECS=5")
	var rows []row
	re := regexp.MustCompile(`(ours|dnsmasq)\s+@\s*(\d+)/s: (.*)`)
	for _, l := range lines(out, re) {
		logf("dhcp: %s", l)
		m := re.FindStringSubmatch(l)
		rows = append(rows, row{what: "DHCP perfdhcp @" + m[2] + "/s, " + m[1], ours: m[3], target: ">= 5000 leases/s, >= 2x dnsmasq, DO p99 <= 2 ms"})
	}
	return rows
}

// pis: 8 Pis reinstalled at once; total time beside the image copy.
func (b *bench) pis() []row {
	out := goTestBench("./test/e2e", "TestBenchEightPis", "RECONCILED_BENCH_PIS=1")
	var rows []row
	for _, l := range lines(out, regexp.MustCompile(`^BENCH `)) {
		logf("pis: %s", l)
		if strings.Contains(l, "total=") {
			rows = append(rows, row{what: "8 Pis reinstalled at once (64 MiB image)", ours: strings.TrimPrefix(l, "BENCH "), target: "dominated by the image copy"})
		}
	}
	return rows
}

// tftp: 64 MiB with curl at blksize 512 and 1468 and with atftp in windows
// of 16, ours vs tftpd-hpa in the same server namespace and run,
// alternating; into a client namespace, then over loopback.
func (b *bench) tftp() []row {
	reps := "3"
	if *quick {
		reps = "1"
	}
	var rows []row
	for _, where := range []struct{ name, loopback string }{{"into a client namespace", "0"}, {"over loopback", "1"}} {
		out := goTestBench("./netboot/tftp", "TestCompareTftpdHpa", "TFTP_BENCH=1", "TFTP_BENCH_REPS="+reps, "TFTP_BENCH_LOOPBACK="+where.loopback)
		for _, l := range lines(out, regexp.MustCompile(`^\s*(ours|tftpd-hpa)\s+(curl|atftp)|ours/tftpd-hpa with`)) {
			logf("tftp %s: %s", where.name, l)
			rows = append(rows, row{what: "TFTP 64 MiB " + where.name + " (MiB/s: best median worst)", ours: l, target: ">= tftpd-hpa at every blksize; >= 100 MB/s windowed"})
		}
	}
	return rows
}
