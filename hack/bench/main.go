// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command bench measures reconciled end to end and, where a peer exists,
// the peer in the same run, then prints one table. Run it with `make bench`
// (it needs bin/reconciled from `make build`; supervisord and runit come
// from Debian: apt-get install supervisor runit).
//
//	go run ./hack/bench [-quick] [-out bench/]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
)

// row is one line of the result table.
type row struct {
	what, ours, peer, ratio, target string
}

var (
	quick  = flag.Bool("quick", false, "smaller sizes and shorter windows (a smoke run, not for figures)")
	outDir = flag.String("out", "bench", "folder for the raw output")
	// serveGit and serveAddr run the bench as the HTTP git server of the
	// fleet polling row (a child process, so its CPU can be measured).
	serveGit  = flag.String("serve-git", "", "internal: serve this folder's repositories over HTTP")
	serveAddr = flag.String("serve-addr", "", "internal: the address for -serve-git")
	only      = flag.String("only", "", "comma-separated scenario names to run (edit,bigfile,crash,cold,idle,links,sockets,alert,modules,dhcp,tftp,pis,checks,kubectl,kubectlwatch,kube,fleet)")
)

func main() {
	flag.Parse()
	if *serveGit != "" {
		serveGitHTTP(*serveGit, *serveAddr)
		return
	}
	root, err := filepath.Abs(".")
	check(err)
	bin := filepath.Join(root, "bin", "reconciled")
	if _, err := os.Stat(bin); err != nil {
		fatalf("build first: make build (%v)", err)
	}
	work, err := os.MkdirTemp("", "reconciled-bench-")
	check(err)
	defer os.RemoveAll(work)
	blip := filepath.Join(work, "blip")
	if out, err := exec.Command("gcc", "-O2", "-o", blip, filepath.Join(root, "hack", "bench", "blip", "blip.c")).CombinedOutput(); err != nil {
		fatalf("compile blip: %v\n%s", err, out)
	}
	b := &bench{bin: bin, work: work, blip: blip, floors: measureFloors(work)}
	want := func(name string) bool { return *only == "" || strings.Contains(","+*only+",", ","+name+",") }
	rows := b.floors.rows()
	if want("edit") {
		for _, n := range sizes(1000, 10000) {
			rows = append(rows, b.editLatency(n)...)
		}
	}
	if want("bigfile") {
		rows = append(rows, b.bigFile(scale(10000))...)
	}
	if want("crash") {
		rows = append(rows, b.crashRestart()...)
	}
	if want("cold") {
		rows = append(rows, b.coldStartSleepers(scale(2000)), b.coldStartTrue(scale(10000)))
	}
	if want("idle") {
		rows = append(rows, b.idle(scale(1000))...)
	}
	if want("links") {
		rows = append(rows, b.links(scale(10000))...)
	}
	if want("sockets") {
		rows = append(rows, b.sockets()...)
	}
	if want("alert") {
		rows = append(rows, b.alertLatency()...)
	}
	if want("modules") {
		rows = append(rows, b.modules()...)
	}
	if want("dhcp") {
		rows = append(rows, b.dhcp()...)
	}
	if want("tftp") {
		rows = append(rows, b.tftp()...)
	}
	if want("pis") {
		rows = append(rows, b.pis()...)
	}
	if want("kubectl") {
		rows = append(rows, b.kubectlGet()...)
	}
	if want("kubectl") || want("kubectlwatch") {
		rows = append(rows, b.kubectlWatch()...)
	}
	if want("kube") {
		rows = append(rows, b.kubeAgents()...)
	}
	if want("checks") {
		rows = append(rows, b.checks()...)
	}
	if want("fleet") {
		rows = append(rows, b.fleetPolling()...)
		rows = append(rows, b.fleetPollingHTTP()...)
		rows = append(rows, b.fleetConverge()...)
		rows = append(rows, b.fleetConvergeMany(scale(50))...)
		rows = append(rows, b.fleetPage()...)
	}
	table := render(rows)
	fmt.Print(table)
	host, _ := os.Hostname()
	header := fmt.Sprintf("# reconciled bench %s on %s (%d CPUs, %s/%s, %s)\n", time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel())
	check(os.MkdirAll(*outDir, 0o755))
	name := filepath.Join(*outDir, time.Now().UTC().Format("2006-01-02T150405")+"-"+host+".txt")
	check(os.WriteFile(name, []byte(header+table+"\nraw:\n"+raw.String()), 0o644))
	fmt.Println("raw output:", name)
}

func sizes(ns ...int) []int {
	if *quick {
		return []int{ns[0] / 10}
	}
	return ns
}

func scale(n int) int {
	if *quick {
		return n / 10
	}
	return n
}

func render(rows []row) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tRECONCILED\tPEER\tRATIO\tTARGET")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.what, r.ours, dash(r.peer), dash(r.ratio), dash(r.target))
	}
	tw.Flush()
	return sb.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	onFatal.Close()
	os.Exit(1)
}

// onFatal holds what a fatal error must still stop (daemons, peers):
// os.Exit skips deferred calls.
var onFatal fixtures.Runner
