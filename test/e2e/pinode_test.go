// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/netnstest"
	"github.com/reconciled/reconciled/test/fixtures/snmptest"
)

// piDemo holds the shell "Raspberry Pi" (pi.sh) and its DHCP client
// script, shared with the piman demo (make demo-piman).
const piDemo = "../../examples/piman/demo"

// netbootConfig writes a daemon config into dir whose netboot section
// serves root on nw's server side, plus the extra lines of that section,
// and returns its path.
func netbootConfig(t *testing.T, dir string, nw *netnstest.Net, root, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "reconciled.conf")
	writeFile(t, cfg, fmt.Sprintf(`netboot:
  interface: %s
  serverIP: %s
  subnet: %s
  tftpRoot: %s
  httpAddr: "%s:8070"
`, nw.Iface, nw.ServerIP, nw.Subnet, root, nw.ServerIP)+extra)
	return cfg
}

// piLab is a netboot network: the daemon in the server namespace with its
// DHCP, TFTP and handshake servers, snmpd as the PoE switch, boot files, an
// image, and shell Pis in the client namespaces.
type piLab struct {
	t         *testing.T
	nw        *netnstest.Net
	sw        *snmptest.Switch
	e         *env
	work      string
	boot      []byte
	imgPath   string
	imgSHA    string
	alertFile string
}

func newPiLab(t *testing.T, clients int, imageBytes int, bootTimeout string) *piLab {
	t.Helper()
	nw := netnstest.New(t, clients)
	sw := snmptest.StartWith(t, snmptest.Options{Namespace: nw.Server, ListenIP: nw.ServerIP})
	root, work := t.TempDir(), t.TempDir()
	l := &piLab{t: t, nw: nw, sw: sw, work: work, boot: make([]byte, 300_000), imgPath: filepath.Join(work, "os.img")}
	rand.Read(l.boot)
	writeFile(t, filepath.Join(root, "start4.elf"), string(l.boot))
	img := make([]byte, imageBytes)
	rand.Read(img)
	writeFile(t, l.imgPath, string(img))
	sum := sha256.Sum256(img)
	l.imgSHA = hex.EncodeToString(sum[:])
	for _, f := range []string{"pi.sh", "udhcpc.script"} {
		b, err := os.ReadFile(filepath.Join(piDemo, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(work, f), string(b))
		os.Chmod(filepath.Join(work, f), 0o755)
	}
	l.alertFile = filepath.Join(work, "alerts.jsonl")
	cfg := netbootConfig(t, work, nw, root, fmt.Sprintf("  powerOffTime: 100ms\n  bootTimeout: %s\n  installTimeout: 60s\n", bootTimeout))
	l.e = newEnv(t, "--config", cfg)
	l.e.netns = nw.Server
	l.e.start()
	l.e.write("alerts.yaml", fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: pis}
spec:
  match: {kinds: [PiNode]}
  groupWait: 100ms
  receivers:
  - exec: {command: ["/bin/sh", "-c", "cat >> %s; echo >> %s"]}
`, l.alertFile, l.alertFile))
	return l
}

// pinode is the PiNode of client i, on switch port i+1.
func (l *piLab) pinode(i, gen int) string {
	return fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: PiNode
metadata: {name: pi-%d}
spec:
  mac: %q
  ip: 10.77.0.%d
  switch: {address: %q, port: %d, community: %s}
  image: {url: "file://%s", sha256: %s}
  installGeneration: %d
`, 10+i, netnstest.ClientMAC(i), 10+i, l.sw.Addr, i+1, l.sw.Community, l.imgPath, l.imgSHA, gen)
}

// runPi boots the shell Pi of client i once and returns its output.
func (l *piLab) runPi(i int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(l.work, fmt.Sprintf("pi%d", i))
	os.MkdirAll(dir, 0o755)
	return l.nw.Exec(ctx, l.nw.Clients[i], "env", "DIR="+dir, "SCRIPTS="+l.work, "SERVER="+l.nw.ServerIP, "MAC="+netnstest.ClientMAC(i),
		"sh", filepath.Join(l.work, "pi.sh"))
}

// A PiNode end to end: the daemon runs inside the server namespace with
// its DHCP, TFTP and handshake servers; snmpd plays the PoE switch; a
// shell "Pi" in a client namespace netboots when its port is powered,
// installs the image and reports; the resource ends Installed, a second
// boot gets boot-local, an undeclared MAC gets no lease, and a reinstall
// whose Pi never comes back fails with the alert.
func TestPiNodeReinstall(t *testing.T) {
	l := newPiLab(t, 2, 4<<20, "3s")
	e, sw := l.e, l.sw
	piFile := e.write("pi.yaml", l.pinode(0, 1))

	// The reinstall power-cycles the port: off, then on.
	e.eventually("port 1 power-cycled", func() bool { return fmt.Sprint(sw.PortSets(1)) == "[false true]" })
	out, err := l.runPi(0)
	if err != nil || !strings.Contains(out, "LEASE 10.77.0.10") || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("the Pi's install: %v\n%s", err, out)
	}
	if !strings.Contains(out, "opt43=") || strings.Contains(out, "opt43= ") {
		t.Errorf("no option 43 for a Pi bootloader:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(l.work, "pi0", "start4.elf")); string(got) != string(l.boot) {
		t.Fatalf("the boot file fetched over TFTP differs (%d bytes, want %d)", len(got), len(l.boot))
	}
	e.eventually("Installed in the file", func() bool {
		s := e.read("pi.yaml")
		return strings.Contains(s, "phase: Installed") && strings.Contains(s, "installedGeneration: 1")
	})

	// The next boot of the same Pi boots from its disk.
	if out, err := l.runPi(0); err != nil || !strings.Contains(out, "BOOTLOCAL") {
		t.Fatalf("second boot: %v\n%s", err, out)
	}
	if got := fmt.Sprint(sw.PortSets(1)); got != "[false true]" {
		t.Fatalf("power sequence after the install: %s, want one cycle", got)
	}

	// An undeclared MAC gets no lease, and shows up as unknown.
	if out, err := l.runPi(1); err == nil || strings.Contains(out, "LEASE") {
		t.Fatalf("an undeclared MAC got an answer: %v\n%s", err, out)
	}
	if out := e.ctl("get", "pinodes", "--unknown"); !strings.Contains(out, netnstest.ClientMAC(1)) {
		t.Fatalf("get pinodes --unknown:\n%s", out)
	}

	// A reinstall whose Pi never comes back fails after bootTimeout, with
	// the alert.
	os.WriteFile(piFile, []byte(l.pinode(0, 2)), 0o644)
	e.eventually("second power cycle", func() bool { return fmt.Sprint(sw.PortSets(1)) == "[false true false true]" })
	e.eventually("Failed after the boot timeout", func() bool {
		s := e.read("pi.yaml")
		return strings.Contains(s, "phase: Failed") && strings.Contains(s, "BootTimeout") && strings.Contains(s, "installedGeneration: 1")
	})
	e.eventually("PiNodeInstallFailed alert", func() bool {
		b, _ := os.ReadFile(l.alertFile)
		return strings.Contains(string(b), "PiNodeInstallFailed")
	})
	// Retried only when asked: reinstall starts another cycle.
	if out := e.ctl("reinstall", "pinode/pi-10"); !strings.Contains(out, "reinstall requested") {
		t.Fatalf("reinstall: %s", out)
	}
	e.eventually("third power cycle", func() bool { return len(sw.PortSets(1)) == 6 })
	out, err = l.runPi(0)
	if err != nil || !strings.Contains(out, "INSTALLED") {
		t.Fatalf("install after reinstall: %v\n%s", err, out)
	}
	e.eventually("generation 2 installed", func() bool {
		s := e.read("pi.yaml")
		return strings.Contains(s, "phase: Installed") && strings.Contains(s, "installedGeneration: 2")
	})
}

// TestBenchEightPis reinstalls 8 Pis at once (8 shell Pis in 8 namespaces,
// a 64 MiB image each) and reports the total time beside the time the Pis
// spent copying the image. It is a benchmark: it runs with
// RECONCILED_BENCH_PIS=1 (hack/bench pis), not in make test.
func TestBenchEightPis(t *testing.T) {
	if os.Getenv("RECONCILED_BENCH_PIS") == "" {
		t.Skip("benchmark; set RECONCILED_BENCH_PIS=1 (hack/bench pis)")
	}
	const n = 8
	l := newPiLab(t, n, 64<<20, "60s")
	start := time.Now()
	for i := range n {
		l.e.write(fmt.Sprintf("pi%d.yaml", i), l.pinode(i, 1))
	}
	type result struct {
		out string
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			deadline := time.Now().Add(time.Minute)
			for len(l.sw.PortSets(i+1)) < 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // the Pi's power: the switch's record of its port
			}
			out, err := l.runPi(i)
			results <- result{out, err}
		}()
	}
	var copyMax time.Duration
	var firstStart, lastLeased, lastBooted, lastChecked int64
	for range n {
		r := <-results
		if r.err != nil || !strings.Contains(r.out, "INSTALLED") {
			t.Fatalf("a Pi failed: %v\n%s", r.err, r.out)
		}
		var ms int64
		for _, line := range strings.Split(r.out, "\n") {
			if v, ok := strings.CutPrefix(line, "COPYMS "); ok {
				fmt.Sscan(v, &ms)
			}
			var step string
			var at int64
			if _, err := fmt.Sscanf(line, "T %s %d", &step, &at); err == nil {
				switch step {
				case "start":
					if firstStart == 0 || at < firstStart {
						firstStart = at
					}
				case "leased":
					lastLeased = max(lastLeased, at)
				case "booted":
					lastBooted = max(lastBooted, at)
				case "checked":
					lastChecked = max(lastChecked, at)
				}
			}
		}
		copyMax = max(copyMax, time.Duration(ms)*time.Millisecond)
	}
	since := func(at int64) time.Duration { return time.Duration(at - start.UnixNano()).Round(time.Millisecond) }
	fmt.Printf("BENCH steps since the specs were written: first Pi powered+booting %s, all leased %s, all booted (TFTP) %s, all images checked %s\n",
		since(firstStart), since(lastLeased), since(lastBooted), since(lastChecked))
	l.e.eventually("all 8 Installed", func() bool {
		for i := range n {
			if !strings.Contains(l.e.read(fmt.Sprintf("pi%d.yaml", i)), "phase: Installed") {
				return false
			}
		}
		return true
	})
	total := time.Since(start)
	pis := time.Duration(lastChecked - lastBooted) // plan, image copy and checksum: the Pis' own work
	fmt.Printf("BENCH pis=%d image=64MiB total=%s image-copy+verify=%s (%.0f%%; slowest copy alone %s) rest=%s\n", n, total.Round(time.Millisecond),
		pis.Round(time.Millisecond), 100*pis.Seconds()/total.Seconds(), copyMax.Round(time.Millisecond), (total - pis).Round(time.Millisecond))
}
