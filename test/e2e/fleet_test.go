// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/reconciled/reconciled/test/fixtures/gittest"
	"github.com/reconciled/reconciled/test/fixtures/smtptest"
	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// fleetHost is one daemon of the fleet test.
type fleetHost struct {
	name string
	port int
	e    *env
}

// fleet is the fleet test's world: one repository served by real git
// servers, and the daemons.
type fleet struct {
	t      *testing.T
	g      *gittest.Remote
	hosts  []*fleetHost
	token  string
	secret []byte
	client *http.Client
}

// fleetSize is the number of daemons (RECONCILED_FLEET_HOSTS overrides 50
// for quick runs while developing).
func fleetSize() int {
	if n, err := strconv.Atoi(os.Getenv("RECONCILED_FLEET_HOSTS")); err == nil && n >= 4 {
		return n
	}
	return 50
}

// get reads a host's API with the fleet token.
func (f *fleet) get(h *fleetHost, path string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", h.port, path), nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(b)
		return nil
	}
	return json.Unmarshal(b, out)
}

// appState is what convergence looks at: the program running now, and
// when the daemon wrote its status (the sidecar's modification time; zero
// until the status names that program).
func (f *fleet) appState(h *fleetHost) (cmdline string, pid int, written time.Time) {
	var p process
	if err := f.get(h, "/apis/reconciled.dev/v1alpha1/processes/app", &p); err != nil || p.Status.Phase != "Running" || p.Status.Pid <= 0 {
		return "", 0, time.Time{}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Status.Pid))
	if err != nil {
		return "", 0, time.Time{}
	}
	sidecar := filepath.Join(h.e.state, "status", "process", "app.yaml")
	side, err := os.ReadFile(sidecar)
	if err != nil || !strings.Contains(string(side), fmt.Sprintf("pid: %d\n", p.Status.Pid)) {
		return "", 0, time.Time{} // status not written yet
	}
	fi, err := os.Stat(sidecar)
	if err != nil {
		return "", 0, time.Time{}
	}
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "), p.Status.Pid, fi.ModTime()
}

// appCommand is the program of version v on a host: it carries the host's
// name, and the version in its command line.
func appCommand(host string, v int) string {
	return fmt.Sprintf("sleep %d", 100000+v)
}

// appYAML is the Process of version v on h; E2E_DIR lets the harness
// find and kill its programs.
func appYAML(h *fleetHost, v int) string {
	return fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Process
metadata: {name: app}
spec:
  command: ["/bin/sh", "-c", "echo %s v%d; exec %s"]
  env: {E2E_DIR: %q}
`, h.name, v, appCommand(h.name, v), h.e.dir)
}

// commitVersion commits version v of every host's program and returns the
// time of the push.
func (f *fleet) commitVersion(v int) time.Time {
	files := map[string]string{}
	for _, h := range f.hosts {
		files["hosts/"+h.name+"/app.yaml"] = appYAML(h, v)
	}
	f.g.Commit(fmt.Sprintf("app v%d", v), files)
	return time.Now()
}

// webhookAll posts a signed push webhook to every host at once, as a git
// host does for each of its hooks.
func (f *fleet) webhookAll() {
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, f.secret)
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var wg sync.WaitGroup
	for _, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/hooks/git", h.port), bytes.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", sig)
			req.Header.Set("X-GitHub-Event", "push")
			resp, err := f.client.Do(req)
			if err != nil {
				f.t.Errorf("webhook to %s: %v", h.name, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				f.t.Errorf("webhook to %s: %s", h.name, resp.Status)
			}
		}()
	}
	wg.Wait()
}

// waitConverged waits until every host runs version v with its status
// written, and returns each host's time from start to that status write.
// It looks at the hosts one after the other, once a second, so that
// watching does not take the CPU the 50 daemons need (the times come from
// the sidecar files, not from when the test looked).
func (f *fleet) waitConverged(v int, start time.Time) []time.Duration {
	f.t.Helper()
	lat := make([]time.Duration, len(f.hosts))
	done := make([]bool, len(f.hosts))
	left := len(f.hosts)
	ok := waitfor.Until(3*time.Minute, func() bool {
		for i, h := range f.hosts {
			if done[i] {
				continue
			}
			if cmd, _, written := f.appState(h); cmd == appCommand(h.name, v) {
				done[i], lat[i] = true, written.Sub(start)
				left--
			}
		}
		if left > 0 {
			time.Sleep(time.Second) // between rounds over the fleet
		}
		return left == 0
	})
	if !ok {
		var late []string
		for i, h := range f.hosts {
			if !done[i] {
				late = append(late, h.name)
			}
		}
		f.t.Fatalf("not converged to v%d within 3 minutes: %s\n%s daemon log:\n%s", v, strings.Join(late, " "), late[0], f.host(late[0]).e.log.String())
	}
	return lat
}

func (f *fleet) host(name string) *fleetHost {
	for _, h := range f.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// cpuByCommand sums the CPU time of the running processes, with their
// reaped children's, by command name (debugging aid, DEBUGFLEET=1).
func cpuByCommand() map[string]time.Duration {
	out := map[string]time.Duration{}
	ents, _ := os.ReadDir("/proc")
	for _, de := range ents {
		b, err := os.ReadFile("/proc/" + de.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		fields := strings.Fields(s[j+2:])
		for _, part := range []struct {
			name   string
			fields []int
		}{{"", []int{11, 12}}, {" (reaped children)", []int{13, 14}}} {
			var ticks int64
			for _, k := range part.fields {
				v, _ := strconv.ParseInt(fields[k], 10, 64)
				ticks += v
			}
			out[s[i+1:j]+part.name] += time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return out
}

// listenPort returns a free port below the ephemeral range: the hosts'
// ports are chosen before their daemons start, one after the other, and
// the outgoing connections made meanwhile take ephemeral ports.
func listenPort(t *testing.T) int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}
	for range 1000 {
		port := 10000 + rand.IntN(max(1, lo-10000))
		if fleetPorts[port] {
			continue
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			fleetPorts[port] = true
			return port
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// fleetPorts are the ports listenPort gave out.
var fleetPorts = map[int]bool{}

// percentiles returns p50 and p99 (nearest rank) of ds.
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.99)
}

// The fleet story end to end, on real peers: 50 daemons on this machine
// read one repository from a real git server (git daemon for half of them,
// git http-backend for the other half); a commit converges all of them,
// with the webhook and with polling; the fleet page and reconcilectl
// --all-hosts list every host; a real Prometheus discovers them through
// /sd/prometheus and its rules fire for a host that is killed; two
// clustered Alertmanagers send one mail for a Link down on 3 hosts; the
// git server stops, every host keeps running, one restarted meanwhile runs
// its last applied commit, and a commit after the server is back
// converges the fleet.
func TestFleet(t *testing.T) {
	promBin := lookPromBin(t, "prometheus")
	amBin := alertmanagerBin(t)
	n := fleetSize()
	g := gittest.New(t)
	daemonSrv, httpSrv := g.GitDaemon(), g.HTTPBackend()
	base := t.TempDir()
	f := &fleet{t: t, g: g, token: "fleet-read-token", secret: []byte("push-secret"), client: &http.Client{Timeout: 10 * time.Second}}
	tokenFile, secretFile := filepath.Join(base, "fleet-token"), filepath.Join(base, "hook-secret")
	writeFile(t, tokenFile, f.token)
	writeFile(t, secretFile, string(f.secret))

	// Real peers first: the SMTP sink and two clustered Alertmanagers,
	// configured with the shipped example (its smarthost is the sink).
	sink, err := smtptest.New(smtptest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	amURLs := startAlertmanagerPair(t, amBin, sink.Addr())

	// The repository: hosts.yaml, common/ (an AlertRoute to both
	// Alertmanagers), hosts/<name>/ (the program, and a Link on three).
	linkTarget, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptAll(linkTarget)
	var hostsYAML strings.Builder
	files := map[string]string{}
	for i := range n {
		h := &fleetHost{name: fmt.Sprintf("host%02d", i), port: listenPort(t)}
		url := daemonSrv.URL
		if i%2 == 1 {
			url = httpSrv.URL
		}
		// Webhooks on, polling hourly: the first measurement is the
		// webhook's alone.
		h.e = newEnv(t, "--git", url, "--host", h.name, "--git-path", "common", "--git-path", "hosts/${HOST}", "--git-path", "hosts.yaml",
			"--git-interval", "1h", "--git-webhook-secret-file", secretFile, "--fleet-token-file", tokenFile,
			"--listen", fmt.Sprintf("127.0.0.1:%d", h.port), "-v", os.Getenv("FLEETV")+"0")
		h.e.noDir = true
		f.hosts = append(f.hosts, h)
		role := "web"
		if i%5 == 0 {
			role = "db"
		}
		fmt.Fprintf(&hostsYAML, "---\napiVersion: reconciled.dev/v1alpha1\nkind: Host\nmetadata:\n  name: %s\n  labels: {role: %s, site: lab}\nspec: {address: \"127.0.0.1:%d\"}\n", h.name, role, h.port)
		files["hosts/"+h.name+"/app.yaml"] = appYAML(h, 1)
	}
	files["hosts.yaml"] = hostsYAML.String()
	files["common/route.yaml"] = fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: AlertRoute
metadata: {name: central}
spec:
  match: {kinds: [Link]}
  groupWait: 1s
  receivers:
  - alertmanager: {url: %q}
  - alertmanager: {url: %q}
`, amURLs[0], amURLs[1])
	linkHosts := f.hosts[1:4]
	for _, h := range linkHosts {
		files["hosts/"+h.name+"/link.yaml"] = fmt.Sprintf(`apiVersion: reconciled.dev/v1alpha1
kind: Link
metadata:
  name: uplink
  labels: {site: hecnet}
spec:
  tcp: {address: %q}
  interval: 200ms
  timeout: 200ms
  failureThreshold: 1
`, linkTarget.Addr().String())
	}
	g.Commit("the fleet", files)

	start := time.Now()
	for _, h := range f.hosts {
		h.e.start()
	}
	f.waitConverged(1, start)
	t.Logf("%d daemons started and converged on the first commit in %s", n, time.Since(start).Round(time.Millisecond))

	// A commit, then the webhook: every host fetches at once.
	cpu0 := cpuByCommand()
	pushed := f.commitVersion(2)
	f.webhookAll()
	p50, p99 := percentiles(f.waitConverged(2, pushed))
	if os.Getenv("DEBUGFLEET") != "" {
		cpu1 := cpuByCommand()
		for k, v := range cpu1 {
			if d := v - cpu0[k]; d > 50*time.Millisecond {
				t.Logf("CPU during the webhook phase: %-20s %s", k, d)
			}
		}
	}
	figure(t, "fleet: commit -> %d hosts converged, webhook: p50 %s p99 %s (target p99 <= 2s)", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond))

	if os.Getenv("DEBUGFLEET") != "" {
		t.Logf("pushed %s\n%s", pushed.Format(time.RFC3339Nano), f.hosts[0].e.log.String())
	}
	// The fleet page and reconcilectl --all-hosts, from any host.
	var page string
	if err := f.get(f.hosts[0], "/fleet", &page); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(page, `<tr class="row-`); got < n || strings.Count(page, "reachable") < n {
		t.Fatalf("the fleet page lists %d rows, want %d hosts:\n%.2000s", got, n, page)
	}
	victim := f.hosts[n-2]
	out := f.hosts[0].e.ctl("get", "processes", "--all-hosts")
	if lines := strings.Count(strings.TrimSpace(out), "\n"); lines != n || !strings.HasPrefix(out, "HOST") || !regexp.MustCompile(`(?m)^`+victim.name+` +app +Running`).MatchString(out) {
		t.Fatalf("get processes --all-hosts (%d lines, want %d):\n%s", lines, n, out)
	}
	// Reads across hosts need the fleet token.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/apis/reconciled.dev/v1alpha1/processes", f.hosts[1].port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a read without the fleet token: %s", resp.Status)
	}

	// Polling: the daemons restart with a 3 s interval (their programs
	// are adopted), then a commit without webhook.
	const interval = 3 * time.Second
	for _, h := range f.hosts {
		h.e.stop(syscall.SIGTERM)
		for i, a := range h.e.args {
			if a == "1h" {
				h.e.args[i] = interval.String()
			}
		}
		h.e.start()
	}
	pushed = f.commitVersion(3)
	p50, p99 = percentiles(f.waitConverged(3, pushed))
	figure(t, "fleet: commit -> %d hosts converged, polling every %s: p50 %s p99 %s (target p99 <= interval + 2s = %s)", n, interval, p50.Round(time.Millisecond), p99.Round(time.Millisecond), interval+2*time.Second)

	// Prometheus, configured from the shipped fleet.yml, finds all hosts
	// through /sd/prometheus and fires ReconciledHostDown for a killed one.
	promBase := startFleetPrometheus(t, promBin, f, amURLs)
	if !waitfor.Until(2*time.Minute, func() bool {
		v, err := promQuery(promBase, `count(up{job="reconciled"} == 1)`)
		return err == nil && v == strconv.Itoa(n)
	}) {
		var targets string
		if resp, err := http.Get(promBase + "/api/v1/targets"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			targets = string(b)
		}
		var sd string
		sdErr := f.get(f.hosts[0], "/sd/prometheus", &sd)
		t.Fatalf("prometheus does not scrape every host; its targets:\n%.3000s\n/sd/prometheus: %v %s", targets, sdErr, sd)
	}
	if v, err := promQuery(promBase, fmt.Sprintf(`count(reconciled_resources{kind="Process",host=%q,role="web",site="lab"})`, victim.name)); err != nil || v != "1" {
		t.Fatalf("host labels from the Host resource: %q %v", v, err)
	}
	victim.e.stop(syscall.SIGKILL)
	t.Logf("%s killed", victim.name)
	waitfor.Within(t, 2*time.Minute, "ReconciledHostDown fires for "+victim.name, func() bool {
		v, err := promQuery(promBase, fmt.Sprintf(`count(ALERTS{alertname="ReconciledHostDown",alertstate="firing",host=%q})`, victim.name))
		return err == nil && v == "1"
	})
	// The page does not wait for the dead host.
	if err := f.get(f.hosts[0], "/fleet", &page); err != nil || !strings.Contains(page, "unreachable") {
		t.Fatalf("the fleet page with host07 down: %v\n%.1500s", err, page)
	}
	victim.e.start()

	t.Log("ReconciledHostDown fired")
	// A Link down on three hosts: both Alertmanagers get each host's
	// alert; the cluster sends one mail for the group.
	linkTarget.Close()
	hecnetMails := func() []smtptest.Message {
		var out []smtptest.Message
		for _, m := range sink.Messages() {
			if strings.Join(m.To, ",") == "hecnet-admins@example.org" {
				out = append(out, m)
			}
		}
		return out
	}
	waitfor.Within(t, 2*time.Minute, "a mail to hecnet-admins", func() bool { return len(hecnetMails()) > 0 })
	// Both Alertmanagers had every alert before the mail went; a second
	// mail (the other instance's) would come within the peer timeout.
	waitfor.Steady(t, 10*time.Second, "exactly one mail for the LinkDown group", func() bool { return len(hecnetMails()) == 1 })
	mail := hecnetMails()[0]
	for _, h := range linkHosts {
		if !strings.Contains(mail.Body(), h.name) {
			t.Errorf("the mail does not name %s:\n%s", h.name, mail.Body())
		}
	}
	for _, am := range amURLs {
		if has, _ := amHasAlert(am, "LinkDown", "host", linkHosts[2].name, "site", "hecnet", "kind", "Link"); !has {
			t.Errorf("%s has no LinkDown from %s", am, linkHosts[2].name)
		}
	}

	t.Log("one mail for the LinkDown group")
	// The git server goes away: nothing stops; a host restarted meanwhile
	// runs its last applied commit.
	daemonSrv.Stop()
	httpSrv.Stop()
	pids := map[string]int{}
	for _, h := range f.hosts {
		_, pids[h.name], _ = f.appState(h)
	}
	waitfor.Within(t, time.Minute, "every source not Ready", func() bool {
		for _, h := range f.hosts {
			var l struct {
				Items []struct {
					Name  string `json:"name"`
					Ready bool   `json:"ready"`
				} `json:"items"`
			}
			if err := f.get(h, "/apis/reconciled.dev/v1alpha1/sources", &l); err != nil {
				return false
			}
			for _, s := range l.Items {
				if s.Name == "git" && s.Ready {
					return false
				}
			}
		}
		return true
	})
	restarted := f.hosts[n-1]
	restarted.e.stop(syscall.SIGTERM)
	restarted.e.start()
	for _, h := range f.hosts {
		if cmd, pid, _ := f.appState(h); cmd != appCommand(h.name, 3) || pid != pids[h.name] {
			t.Fatalf("%s with the git server down: %q pid %d, want %q pid %d", h.name, cmd, pid, appCommand(h.name, 3), pids[h.name])
		}
	}

	// The server is back: a new commit converges everyone.
	daemonSrv.Start()
	httpSrv.Start()
	pushed = f.commitVersion(4)
	p50, p99 = percentiles(f.waitConverged(4, pushed))
	t.Logf("after the git server came back: p50 %s p99 %s", p50.Round(time.Millisecond), p99.Round(time.Millisecond))
}

// startAlertmanagerPair runs two Alertmanagers clustered with
// --cluster.peer, configured with deploy/alertmanager/alertmanager.yml
// (smarthost: the SMTP sink; shorter waits), and returns their URLs.
func startAlertmanagerPair(t *testing.T, bin, smarthost string) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/alertmanager/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"].(map[string]any)["smtp_smarthost"] = smarthost
	route := cfg["route"].(map[string]any)
	route["group_wait"] = "5s"
	for _, r := range route["routes"].([]any) {
		delete(r.(map[string]any), "group_wait")
	}
	out, _ := yaml.Marshal(cfg)
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, conf, string(out))
	web := []int{freePort(t), freePort(t)}
	cluster := []int{freePort(t), freePort(t)}
	var urls []string
	for i := range 2 {
		log := &syncbuf.Buffer{}
		am := exec.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, fmt.Sprintf("data%d", i)),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", web[i]),
			fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", cluster[i]),
			fmt.Sprintf("--cluster.peer=127.0.0.1:%d", cluster[1-i]),
			"--cluster.peer-timeout=3s", "--cluster.settle-timeout=5s")
		am.Stdout, am.Stderr = log, log
		if err := am.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			am.Process.Kill()
			am.Wait()
			if t.Failed() {
				t.Logf("alertmanager %d log:\n%s", i, log.String())
			}
		})
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", web[i]))
	}
	for _, u := range urls {
		waitfor.Within(t, time.Minute, u+" ready and clustered", func() bool {
			resp, err := http.Get(u + "/api/v2/status")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var st struct {
				Cluster struct {
					Status string `json:"status"`
					Peers  []any  `json:"peers"`
				} `json:"cluster"`
			}
			return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Cluster.Status == "ready" && len(st.Cluster.Peers) == 2
		})
	}
	return urls
}

// startFleetPrometheus runs Prometheus with deploy/prometheus/fleet.yml and
// fleet-rules.yml, pointed at two hosts' /sd/prometheus and the
// Alertmanager pair, with 1 s intervals and the rules' holds shortened to
// 2 s; it returns Prometheus' URL.
func startFleetPrometheus(t *testing.T, bin string, f *fleet, amURLs []string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, f.token)
	var rules []string
	for _, name := range []string{"reconciled-rules.yml", "fleet-rules.yml"} {
		b, err := os.ReadFile("../../deploy/prometheus/" + name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, regexp.MustCompile(`(?m)^(\s+for:) \S+$`).ReplaceAllString(string(b), "$1 2s"))
		rules = append(rules, p)
	}
	b, err := os.ReadFile("../../deploy/prometheus/fleet.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = rules
	var amTargets []string
	for _, u := range amURLs {
		amTargets = append(amTargets, strings.TrimPrefix(u, "http://"))
	}
	cfg["alerting"].(map[string]any)["alertmanagers"].([]any)[0].(map[string]any)["static_configs"] = []any{map[string]any{"targets": amTargets}}
	job := cfg["scrape_configs"].([]any)[0].(map[string]any)
	job["authorization"] = map[string]any{"type": "Bearer", "credentials_file": tokenFile}
	for i, sd := range job["http_sd_configs"].([]any) {
		m := sd.(map[string]any)
		m["url"] = fmt.Sprintf("http://127.0.0.1:%d/sd/prometheus", f.hosts[i].port)
		m["refresh_interval"] = "2s"
		m["authorization"] = map[string]any{"type": "Bearer", "credentials_file": tokenFile}
	}
	out, _ := yaml.Marshal(cfg)
	conf := filepath.Join(dir, "prometheus.yml")
	writeFile(t, conf, string(out))
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "config", conf).CombinedOutput(); err != nil {
			t.Fatalf("promtool check config: %v\n%s", err, out)
		}
	}
	port := freePort(t)
	log := &syncbuf.Buffer{}
	prom := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	prom.Stdout, prom.Stderr = log, log
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		prom.Process.Kill()
		prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitfor.Within(t, time.Minute, "prometheus ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}
