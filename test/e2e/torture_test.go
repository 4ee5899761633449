// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// malformed is one generated bad resource file.
type malformed struct {
	name     string // file name in the resource dir
	category string
	content  string
	// mustReport: the file has to be reported with FILE:LINE, either as an
	// Invalid resource (Ready=False InvalidSpec) or as a problem. Files
	// that define nothing (empty, comments only, bare separators) need
	// not be reported.
	mustReport bool
}

const tortureHeader = "apiVersion: reconciled.dev/v1alpha1\n"

// tortureCategories are the kinds of damage; each takes the file's unique
// resource name and the generator and returns the content and whether the
// file must be reported.
var tortureCategories = []struct {
	name string
	gen  func(r *rand.Rand, n string) (string, bool)
}{
	{"unclosed-bracket", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\", \"x\"\n  stopTimeout: 2s\n", true
	}},
	{"unclosed-brace", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Link\nmetadata: {name: " + n + "\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n", true
	}},
	{"unclosed-quote", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata:\n  name: \"" + n + "\nspec:\n  command: [\"/bin/true\"]\n", true
	}},
	{"bad-indentation", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Link\nmetadata:\n  name: " + n + "\n   labels: {a: b}\nspec:\n tcp:\n    address: 127.0.0.1:1\n  interval: 1h\n", true
	}},
	{"tab-indentation", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata:\n\tname: " + n + "\nspec:\n\tcommand: [\"/bin/true\"]\n", true
	}},
	{"unknown-field", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\"]\n  comand" + fmt.Sprint(r.IntN(100)) + ": [oops]\n", true
	}},
	{"unknown-metadata-field", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Link\nmetadata: {name: " + n + ", lables: {a: b}}\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n", true
	}},
	{"wrong-type", func(r *rand.Rand, n string) (string, bool) {
		bad := []string{"command: 42", "command: {a: b}", "env: [1, 2]", "stopTimeout: [1, 2]", "command: [\"/bin/true\"]\n  restartPolicy: {x: 1}"}
		return tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  " + bad[r.IntN(len(bad))] + "\n", true
	}},
	{"metadata-wrong-type", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: \"" + n + "\"\nspec:\n  command: [\"/bin/true\"]\n", true
	}},
	{"missing-kind", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "metadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\"]\n", true
	}},
	{"missing-name", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: {labels: {n: " + n + "}}\nspec:\n  command: [\"/bin/true\"]\n", true
	}},
	{"unknown-kind", func(r *rand.Rand, n string) (string, bool) {
		kinds := []string{"Widget", "process", "Processes", "Deployment", "PINode"}
		return tortureHeader + "kind: " + kinds[r.IntN(len(kinds))] + "\nmetadata: {name: " + n + "}\nspec: {}\n", true
	}},
	{"bad-apiversion", func(r *rand.Rand, n string) (string, bool) {
		return "apiVersion: reconciled.dev/v9\nkind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\"]\n", true
	}},
	{"invalid-name", func(r *rand.Rand, n string) (string, bool) {
		bad := []string{"Bad_Name", "has space", "../etc", "UPPER", "-leading", strings.Repeat("x", 300)}
		return tortureHeader + "kind: Link\nmetadata: {name: \"" + bad[r.IntN(len(bad))] + n + "\"}\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n  interval: 1h\n", true
	}},
	{"process-empty-command", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: []\n", true
	}},
	{"link-two-probes", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Link\nmetadata: {name: " + n + "}\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n  http: {url: \"http://127.0.0.1:1/\"}\n  interval: 1h\n", true
	}},
	{"module-bad-unitname", func(r *rand.Rand, n string) (string, bool) {
		bad := []string{"../../etc/passwd", "has space.service", "x/y.service", "\"\\n\""}
		return tortureHeader + "kind: Module\nmetadata: {name: " + n + "}\nspec:\n  exec: [\"/bin/true\"]\n  unitName: " + bad[r.IntN(len(bad))] + "\n", true
	}},
	{"pinode-bad-mac", func(r *rand.Rand, n string) (string, bool) {
		bad := []string{"zz:zz:zz:zz:zz:zz", "dc:a6:32", "not-a-mac", "dc:a6:32:00:00:00:00:01"}
		return tortureHeader + "kind: PiNode\nmetadata: {name: " + n + "}\nspec:\n  mac: \"" + bad[r.IntN(len(bad))] + "\"\n  ip: 127.0.0.2\n  switch: {address: \"127.0.0.1:161\", port: 1}\n  image: {url: \"file:///nonexistent.img\"}\n  installGeneration: 0\n", true
	}},
	{"alertroute-no-receivers", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: AlertRoute\nmetadata: {name: " + n + "}\nspec:\n  match: {severity: critical}\n  receivers: []\n", true
	}},
	{"binary-garbage", func(r *rand.Rand, n string) (string, bool) {
		b := make([]byte, 64+r.IntN(4096))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		b[0] = 0xff // never valid UTF-8, never an empty document
		return string(b), true
	}},
	{"huge-line", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Link\nmetadata: {name: " + n + "}\nspec:\n  tcp: {address: \"127.0.0.1:1\"}\n  junk: \"" + strings.Repeat("A", 1<<20) + "\"\n", true
	}},
	{"huge-line-no-newline", func(r *rand.Rand, n string) (string, bool) {
		return strings.Repeat("kind: [", 1<<20/7), true
	}},
	{"alias-bomb", func(r *rand.Rand, n string) (string, bool) {
		var b strings.Builder
		b.WriteString(tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i < 9; i++ {
			fmt.Fprintf(&b, "x%d: &x%d [*x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		b.WriteString("spec:\n  command: *x8\n")
		return b.String(), true
	}},
	{"duplicate-keys", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nkind: Link\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\"]\n", true
	}},
	{"duplicate-spec-keys", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\"]\n  command: [\"/bin/false\"]\n", true
	}},
	{"multi-doc-one-bad", func(r *rand.Rand, n string) (string, bool) {
		good := tortureHeader + "kind: AlertRoute\nmetadata: {name: ok-" + n + "}\nspec:\n  match: {severity: critical}\n  receivers:\n  - log: {}\n"
		bad := tortureHeader + "kind: Widget\nmetadata: {name: " + n + "}\nspec: {}\n"
		if r.IntN(2) == 0 {
			return good + "---\n" + bad, true
		}
		return bad + "---\n" + good, true
	}},
	{"multi-doc-syntax-error", func(r *rand.Rand, n string) (string, bool) {
		good := tortureHeader + "kind: AlertRoute\nmetadata: {name: ok-" + n + "}\nspec:\n  receivers:\n  - log: {}\n"
		return good + "---\n" + tortureHeader + "kind: Link\nmetadata: {name: [" + n + "\n", true
	}},
	{"not-a-mapping", func(r *rand.Rand, n string) (string, bool) {
		bad := []string{"- a\n- b\n", "just a string " + n + "\n", "42\n", "[kind, Process]\n"}
		return bad[r.IntN(len(bad))], true
	}},
	{"nul-bytes", func(r *rand.Rand, n string) (string, bool) {
		doc := tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/true\"]\n"
		i := len(tortureHeader) + r.IntN(len(doc)-len(tortureHeader))
		return doc[:i] + "\x00" + doc[i:], true
	}},
	{"invalid-utf8", func(r *rand.Rand, n string) (string, bool) {
		return tortureHeader + "kind: Process\nmetadata: {name: " + n + "}\nspec:\n  command: [\"/bin/\xc3\x28\"]\n", true
	}},
	{"empty", func(r *rand.Rand, n string) (string, bool) {
		empties := []string{"", "\n\n", "# only a comment\n", "---\n", "---\n---\n", "   \n"}
		return empties[r.IntN(len(empties))], false
	}},
}

// generateMalformed returns n bad files, deterministically. The first is a
// second definition of the healthy Process (DuplicateName).
func generateMalformed(e *env, n int) []malformed {
	r := rand.New(rand.NewPCG(7, 2026))
	out := []malformed{{name: "t0000-duplicate-name.yaml", category: "duplicate-name",
		content: strings.Replace(sleeper(e, "healthy", ""), "sleep 1000", "sleep 1001", 1), mustReport: true}}
	for i := 1; i < n; i++ {
		c := tortureCategories[(i-1)%len(tortureCategories)]
		res := fmt.Sprintf("t%04d", i)
		content, must := c.gen(r, res)
		out = append(out, malformed{name: fmt.Sprintf("t%04d-%s.yaml", i, c.name), category: c.name, content: content, mustReport: must})
	}
	return out
}

// tortureAPI reads the daemon's API over its unix socket.
func tortureAPI(e *env) func(path string) ([]byte, error) {
	sock := filepath.Join(e.state, "reconciled.sock")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	return func(path string) ([]byte, error) {
		resp, err := c.Get("http://reconciled" + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return b, err
	}
}

// tortureReports maps each file to the FILE:LINE reports the daemon has
// for it: problems not attached to a resource (the problems API) and
// Invalid resources (Ready=False, reason InvalidSpec, message FILE:LINE).
// Only reports whose text holds the file's path followed by :LINE count.
func tortureReports(get func(string) ([]byte, error)) (map[string][]string, error) {
	const base = "/apis/reconciled.dev/v1alpha1/"
	out := map[string][]string{}
	lineRE := regexp.MustCompile(`(/[^\s:"]+\.yaml):(\d+)`)
	b, err := get(base + "problems")
	if err != nil {
		return nil, err
	}
	var probs struct {
		Items []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &probs); err != nil {
		return nil, fmt.Errorf("problems: %v", err)
	}
	for _, p := range probs.Items {
		// The message's line is the offending field's, which may be
		// below the document's line in p.Line.
		if m := lineRE.FindStringSubmatch(p.Message); p.Line > 0 && m != nil && m[1] == p.File {
			out[p.File] = append(out[p.File], "problem "+p.Reason+": "+p.Message)
		}
	}
	for _, plural := range []string{"processes", "links", "modules", "pinodes", "alertroutes"} {
		b, err := get(base + plural)
		if err != nil {
			return nil, err
		}
		var l struct {
			Items []struct {
				Status struct {
					Conditions []struct {
						Type, Status, Reason, Message string
					} `json:"conditions"`
				} `json:"status"`
			} `json:"items"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s: %v", plural, err)
		}
		for _, it := range l.Items {
			for _, c := range it.Status.Conditions {
				if c.Type != "Ready" || c.Reason != "InvalidSpec" {
					continue
				}
				for _, m := range lineRE.FindAllStringSubmatch(c.Message, -1) {
					out[m[1]] = append(out[m[1]], "invalid "+plural+": "+c.Message)
				}
			}
		}
	}
	return out, nil
}

// 100 (1,000 with RECONCILED_TORTURE=1) generated malformed resource files
// dropped at once into a live directory: the daemon stays up and answers,
// every file that defines something is reported with FILE:LINE (as an
// Invalid resource or a problem), validate agrees offline, the running
// program is not touched, and removing the files clears every report.
func TestTortureMalformedFiles(t *testing.T) {
	n := 100
	if os.Getenv("RECONCILED_TORTURE") == "1" {
		n = 1000
	}
	e := newEnv(t)
	e.start()
	e.write("healthy.yaml", sleeper(e, "healthy", ""))
	p := e.waitProcess("healthy", "Running", func(p process) bool { return p.Status.Phase == "Running" && p.Status.Pid > 0 })
	pid := p.Status.Pid
	get := tortureAPI(e)

	files := generateMalformed(e, n)
	start := time.Now()
	for _, f := range files {
		writeFile(t, filepath.Join(e.dir, f.name), f.content)
	}
	t.Logf("wrote %d malformed files in %v", len(files), time.Since(start).Round(time.Millisecond))

	// Every file that must be reported is, with its own path and a line.
	var must []string
	for _, f := range files {
		if f.mustReport {
			must = append(must, filepath.Join(e.dir, f.name))
		}
	}
	var reports map[string][]string
	var missing []string
	deadline := time.Now().Add(time.Duration(60+n/10) * time.Second)
	for {
		var err error
		reports, err = tortureReports(get)
		missing = missing[:0]
		if err == nil {
			for _, path := range must {
				if len(reports[path]) == 0 {
					missing = append(missing, path)
				}
			}
		}
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, path := range missing {
				desc = append(desc, filepath.Base(path))
			}
			sort.Strings(desc)
			if len(desc) > 40 {
				desc = append(desc[:40], fmt.Sprintf("... and %d more", len(missing)-40))
			}
			t.Fatalf("after %v: err %v; %d of %d files not reported with FILE:LINE:\n%s",
				time.Since(start).Round(time.Millisecond), err, len(missing), len(must), strings.Join(desc, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	reported := 0
	for _, f := range files {
		if len(reports[filepath.Join(e.dir, f.name)]) > 0 {
			reported++
		}
	}
	t.Logf("all %d files that must be reported are, %v after the drop", len(must), time.Since(start).Round(time.Millisecond))
	for _, f := range files {
		if f.category == "duplicate-name" {
			r := reports[filepath.Join(e.dir, f.name)]
			if !strings.Contains(strings.Join(r, "\n"), "DuplicateName") {
				t.Fatalf("duplicate definition not reported as DuplicateName: %q", r)
			}
		}
	}

	// The daemon is up, answers, and never touched the running program.
	checkUntouched := func(when string) {
		t.Helper()
		if e.daemon.ProcessState != nil {
			t.Fatalf("%s: daemon exited: %v", when, e.daemon.ProcessState)
		}
		q, ok := e.getProcess("healthy")
		if !ok {
			t.Fatalf("%s: daemon does not answer for process/healthy", when)
		}
		if q.Status.Pid != pid || !alive(pid) || q.Status.Restarts != 0 || q.Status.Phase != "Running" {
			t.Fatalf("%s: running program touched: pid %d -> %d (alive %v), restarts %d, phase %s", when, pid, q.Status.Pid, alive(pid), q.Status.Restarts, q.Status.Phase)
		}
		if c := e.copies(); c != 1 {
			t.Fatalf("%s: %d copies of programs running, want 1", when, c)
		}
	}
	checkUntouched("after the drop")
	// get all still works and warns about the problems.
	if _, _, code := e.ctlQuiet("get", "all"); code != 0 {
		t.Fatalf("get all: exit %d", code)
	}

	// validate, offline, agrees: exit 1 and every reported file named
	// with a line (the duplicate may be blamed on either definition).
	vstart := time.Now()
	out, errs, code := e.ctlQuiet("validate", e.dir)
	if code != 1 {
		t.Fatalf("validate exit %d, want 1:\n%s%s", code, out, errs)
	}
	var vmissing []string
	for _, f := range files {
		if !f.mustReport {
			continue
		}
		path := filepath.Join(e.dir, f.name)
		if !regexp.MustCompile(regexp.QuoteMeta(path) + `:\d+: `).MatchString(out) {
			vmissing = append(vmissing, f.name)
		}
	}
	if len(vmissing) > 0 {
		t.Fatalf("validate does not report %d files with FILE:LINE: %v", len(vmissing), vmissing)
	}
	t.Logf("validate agrees (exit 1, %d files named) in %v", len(must), time.Since(vstart).Round(time.Millisecond))

	// Removing the bad files clears every report; the program is still
	// untouched.
	for _, f := range files {
		if err := os.Remove(filepath.Join(e.dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
	dstart := time.Now()
	var left map[string][]string
	ddeadline := time.Now().Add(time.Duration(60+n/10) * time.Second)
	for {
		var err error
		left, err = tortureReports(get)
		if err == nil && len(left) == 0 {
			b, _ := get("/apis/reconciled.dev/v1alpha1/problems")
			var l struct{ Items []json.RawMessage }
			if json.Unmarshal(b, &l) == nil && len(l.Items) == 0 {
				break
			}
		}
		if time.Now().After(ddeadline) {
			b, _ := get("/apis/reconciled.dev/v1alpha1/problems")
			t.Fatalf("reports left %v after removing the files: %d files; problems: %.2000s", time.Since(dstart), len(left), b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("reports cleared %v after removing the files", time.Since(dstart).Round(time.Millisecond))
	// Resources the files defined (the good halves of multi-document
	// files, the Invalid ones) are gone too.
	e.eventually("only the healthy Process left", func() bool {
		o, _, code := e.ctlQuiet("get", "all", "-o", "name")
		return code == 0 && strings.TrimSpace(o) == "process/healthy"
	})
	checkUntouched("after removing the files")
	figure(t, "TORTURE malformed files: tried %d, reported %d, daemon up, running program untouched", len(files), reported)
	t.Logf("(of the %d: %d must be reported with FILE:LINE, %d define nothing)", len(files), len(must), len(files)-len(must))
}
