// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command demo runs one of the examples for real on this machine, with
// everything it needs started locally: a stand-in for PyDECNET and an SMTP
// sink (hecnet), local services to watch (monitoring), systemd in private
// namespaces and mosquitto (modules), network namespaces with snmpd as the
// PoE switch and a shell Pi (piman). It prints what to try and runs until
// Ctrl-C, then removes everything it started.
//
//	go run ./hack/demo [--check] hecnet|monitoring|modules|piman
//
// (make demo-hecnet and so on). With --check it stops once the demo is up
// and working (the test of every demo's start-up); exit status 3 means this
// machine cannot run that demo (no root, no namespaces).
//
// The resource files of each demo are the templates in
// examples/<name>/demo/, beside the production-shaped files of the example.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
)

// demo is one runnable example.
type demo struct {
	// about is one line for --help.
	about string
	// setup starts what the demo needs and writes its resources; it
	// returns the daemon's extra flags and the conditions that mean the
	// demo is up.
	setup func(d *run) (flags []string, ready []condition)
	// tryThis is printed once the demo is up.
	tryThis func(d *run) string
	// exercise, with --check, does some of what tryThis says and waits
	// for its effects.
	exercise func(d *run)
}

var demos = map[string]demo{
	"hecnet":     hecnet,
	"monitoring": monitoring,
	"modules":    modules,
	"piman":      piman,
}

// condition is one thing that must hold for the demo to be up.
type condition struct {
	what string
	ok   func(d *run) bool
}

// run is one demo being run.
type run struct {
	*fixtures.Runner
	name   string
	repo   string // the checkout: examples/ are read from it
	bin    string // where reconciled and reconcilectl are
	dir    string // everything the demo writes
	listen string // the daemon's API address
	netns  string // run the daemon in this network namespace
	values map[string]any
	daemon *exec.Cmd
	http   *http.Client

	mu       sync.Mutex
	received []string // subjects of mail and webhook notifications, in order
}

// receivedOne is the condition that a notification containing text arrived.
func receivedOne(text string) condition {
	return condition{fmt.Sprintf("a notification %q", text), func(r *run) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range r.received {
			if strings.Contains(s, text) {
				return true
			}
		}
		return false
	}}
}

// notified records a received notification.
func (r *run) notified(subject string) {
	r.mu.Lock()
	r.received = append(r.received, subject)
	r.mu.Unlock()
}

// touch creates (or with remove, deletes) one of the demo's control files.
func (r *run) touch(name string, remove bool) {
	p := filepath.Join(r.dir, name)
	if remove {
		os.Remove(p)
		return
	}
	r.writeFile(p, "", 0o644)
}

func main() {
	check := flag.Bool("check", false, "stop once the demo is up (exit 0), instead of running until Ctrl-C")
	bin := flag.String("bin", "", "folder with reconciled and reconcilectl (default: bin/ of the checkout)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./hack/demo [--check] NAME\n\n")
		for _, n := range []string{"hecnet", "monitoring", "modules", "piman"} {
			fmt.Fprintf(os.Stderr, "  %-11s %s\n", n, demos[n].about)
		}
	}
	flag.Parse()
	dm, ok := demos[flag.Arg(0)]
	if flag.NArg() != 1 || !ok {
		flag.Usage()
		os.Exit(2)
	}
	r := &run{Runner: &fixtures.Runner{}, name: flag.Arg(0), values: map[string]any{}}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nstopping the demo and everything it started...")
		r.Close()
		os.Exit(0)
	}()
	wd, _ := os.Getwd()
	r.repo = wd
	r.bin = filepath.Join(wd, "bin")
	if *bin != "" {
		r.bin = *bin
	}
	if _, err := os.Stat(filepath.Join(wd, "examples", r.name, "demo")); err != nil {
		r.Fatalf("run the demo from the reconciled checkout (examples/%s/demo not found): %v", r.name, err)
	}
	r.dir = r.TempDir()
	// The unix socket reaches the daemon also inside a network namespace.
	r.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.socket())
	}}}
	r.values["Dir"] = r.dir
	r.values["Repo"] = r.repo
	r.listen = freeAddr(r) // in a network namespace the daemon binds it there
	r.values["Listen"] = r.listen
	flags, ready := dm.setup(r)
	r.startDaemon(flags)
	for _, c := range ready {
		r.waitFor(c)
	}
	fmt.Printf("\nThe %s demo is up. Its files: %s\n", r.name, r.dir)
	if r.netns == "" {
		fmt.Printf("  status page  http://%s/\n", r.listen)
	}
	fmt.Printf("  CLI          export RECONCILED_SOCKET=%s; %s get all\n", r.socket(), filepath.Join(r.bin, "reconcilectl"))
	fmt.Printf("  daemon log   %s\n\n", filepath.Join(r.dir, "daemon.log"))
	fmt.Println(strings.TrimSpace(dm.tryThis(r)))
	if *check {
		if dm.exercise != nil {
			dm.exercise(r)
		}
		fmt.Println("\ndemo check passed")
		r.Close()
		return
	}
	fmt.Println("\nCtrl-C stops the demo and removes what it started.")
	select {}
}

// socket is the daemon's unix socket.
func (r *run) socket() string { return filepath.Join(r.dir, "state", "reconciled.sock") }

// writeResources renders every *.tmpl of examples/<name>/demo into the
// daemon's resource folder (the .tmpl dropped) and returns that folder.
// Other files (scripts) are copied beside it, into the demo's folder.
func (r *run) writeResources() string {
	src := filepath.Join(r.repo, "examples", r.name, "demo")
	res := filepath.Join(r.dir, "resources")
	if err := os.MkdirAll(res, 0o755); err != nil {
		r.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		r.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			r.Fatal(err)
		}
		name, ok := strings.CutSuffix(de.Name(), ".tmpl")
		if !ok {
			mode := os.FileMode(0o644)
			if fi, err := de.Info(); err == nil && fi.Mode()&0o100 != 0 {
				mode = 0o755 // scripts stay executable
			}
			r.writeFile(filepath.Join(r.dir, de.Name()), string(b), mode)
			continue
		}
		t, err := template.New(de.Name()).Option("missingkey=error").Parse(string(b))
		if err != nil {
			r.Fatalf("%s: %v", de.Name(), err)
		}
		var out strings.Builder
		if err := t.Execute(&out, r.values); err != nil {
			r.Fatalf("%s: %v", de.Name(), err)
		}
		dst := filepath.Join(res, name)
		if !strings.HasSuffix(name, ".yaml") {
			dst = filepath.Join(r.dir, name) // daemon config and such
		}
		r.writeFile(dst, out.String(), 0o644)
	}
	return res
}

func (r *run) writeFile(path, content string, mode os.FileMode) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		r.Fatal(err)
	}
	os.Chmod(path, mode) // the umask must not make a resource file unusable
}

// startDaemon runs bin/reconciled on the demo's resources with flags,
// logging to daemon.log, and stops it (and its programs) at the end.
func (r *run) startDaemon(flags []string) {
	bin := filepath.Join(r.bin, "reconciled")
	if _, err := os.Stat(bin); err != nil {
		r.Fatalf("%s: %v (make demo-%s builds it)", bin, err, r.name)
	}
	args := append([]string{"--dir", filepath.Join(r.dir, "resources"), "--state-dir", filepath.Join(r.dir, "state"),
		"--listen", r.listen, "--stop-on-exit"}, flags...)
	cmd := exec.Command(bin, args...)
	if r.netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", r.netns, bin}, args...)...)
	}
	logf, err := os.Create(filepath.Join(r.dir, "daemon.log"))
	if err != nil {
		r.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.Fatal(err)
	}
	r.daemon = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	r.waitFor(condition{"the daemon to answer", func(r *run) bool {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			r.Fatalf("reconciled exited:\n%s", b)
		default:
		}
		return r.get("/readyz") != nil
	}})
}

// waitFor polls c until it holds, for at most two minutes.
func (r *run) waitFor(c condition) {
	fmt.Fprintf(os.Stderr, "waiting for %s...\n", c.what)
	deadline := time.Now().Add(2 * time.Minute)
	for delay := 20 * time.Millisecond; !c.ok(r); delay = min(2*delay, time.Second) {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(r.dir, "daemon.log"))
			r.Fatalf("the %s demo did not come up: no %s after 2 minutes; daemon log:\n%s", r.name, c.what, b)
		}
		time.Sleep(delay) // polling a condition, bounded above
	}
}

// get fetches a path of the daemon's API, nil on any failure.
func (r *run) get(path string) []byte {
	resp, err := r.http.Get("http://reconciled" + path)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return b
}

// phase returns the status.phase of a resource ("" when unknown).
func (r *run) phase(plural, name string) string {
	var o struct {
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	}
	json.Unmarshal(r.get("/apis/reconciled.dev/v1alpha1/"+plural+"/"+name), &o)
	return o.Status.Phase
}

// phaseIs is the condition that a resource has one of the phases.
func phaseIs(plural, name string, phases ...string) condition {
	return condition{fmt.Sprintf("%s/%s to be %s", plural, name, strings.Join(phases, " or ")), func(r *run) bool {
		p := r.phase(plural, name)
		for _, want := range phases {
			if p == want {
				return true
			}
		}
		return false
	}}
}

// freeAddr returns a free loopback address.
func freeAddr(r *run) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ctx is a context that ends when the demo does.
func (r *run) ctx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	r.Cleanup(cancel)
	return ctx
}
