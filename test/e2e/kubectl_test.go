// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
)

// selfSignedFiles writes a certificate for 127.0.0.1 and its key as PEM
// files and returns their paths.
func selfSignedFiles(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return cert, key
}

// kubectlEnv is a daemon serving its API over TLS with a token, and a
// kubeconfig for the real kubectl.
type kubectlEnv struct {
	*env
	kubectl, kubeconfig, anonymous string
}

func newKubectlEnv(t *testing.T) *kubectlEnv {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		fixtures.SkipOrFail(t, "kubectl is not installed (make test installs Debian's kubernetes-client)")
	}
	cert, key := selfSignedFiles(t)
	tokenFile := writeTemp(t, "token", "s3cret-token\n")
	port := freePort(t)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--api-token-file", tokenFile, "--tls-cert-file", cert, "--tls-key-file", key)
	// Both kubeconfigs are the ones reconcilectl writes: with the token,
	// and with another one.
	kubeconfig := func(token string) string {
		out, err := exec.Command(ctlBin, "--server", fmt.Sprintf("https://127.0.0.1:%d", port), "--token-file", token,
			"kubeconfig", "--certificate-authority", cert, "--name", "web1").Output()
		if err != nil {
			t.Fatalf("reconcilectl kubeconfig: %v", err)
		}
		return writeTemp(t, "kubeconfig", string(out))
	}
	return &kubectlEnv{env: e, kubectl: kubectl, kubeconfig: kubeconfig(tokenFile), anonymous: kubeconfig(writeTemp(t, "other-token", "not-the-token\n"))}
}

// k runs kubectl with the kubeconfig; it returns the combined output and
// the exit status.
func (k *kubectlEnv) k(config string, args ...string) (string, int) {
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", config}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(k.state, "kubecache"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		k.t.Fatalf("kubectl %v: %v", args, err)
	}
	return string(out), code
}

// ok runs kubectl and fails the test unless it succeeds and prints every
// one of want.
func (k *kubectlEnv) ok(args []string, want ...string) string {
	k.t.Helper()
	out, code := k.k(k.kubeconfig, args...)
	if code != 0 {
		k.t.Fatalf("kubectl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			k.t.Fatalf("kubectl %s lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

// The real kubectl reads and writes the daemon as it would a cluster:
// discovery, tables with the same columns as reconcilectl, selectors,
// describe with events, watch, create/apply/label/patch/edit/delete through
// the API's files, a stale resourceVersion or a file-managed resource is
// a Conflict, and writes need the token.
func TestKubectl(t *testing.T) {
	k := newKubectlEnv(t)
	k.write("web.yaml", strings.Replace(sleeper(k.env, "web", ""), "  name: web\n", "  name: web\n  labels: {tier: front}\n", 1))
	k.start()
	k.waitProcess("web", "Running", func(p process) bool { return p.Status.Phase == "Running" })

	k.ok([]string{"api-resources"}, "processes", "proc", "reconciled.dev/v1alpha1", "checks", "chk", "false")
	k.ok([]string{"api-versions"}, "reconciled.dev/v1alpha1")
	k.ok([]string{"version"}, "Server Version: v")
	// explain reads the schemas, described by the types' doc comments.
	k.ok([]string{"explain", "process.spec.backoff"}, "KIND:       Process", "initial", "delay before the second restart")
	k.ok([]string{"explain", "check.spec.levels"}, "first rule that matches")
	// The same from the OpenAPI v2 document, as older clients read it.
	k.ok([]string{"explain", "--output", "plaintext-openapiv2", "process.spec.backoff"}, "KIND:     Process", "initial", "delay before the second restart")
	// kubectl leaves validation to the server (fieldValidation), which
	// names unknown fields.
	bad := writeTemp(t, "bad.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: bad}\nspec: {commnd: [/bin/true]}\n")
	if out, code := k.k(k.kubeconfig, "apply", "-f", bad); code == 0 || !strings.Contains(out, `spec.commnd: unknown field (did you mean "command"?)`) {
		t.Fatalf("apply of a misspelt field: %d %s", code, out)
	}
	k.ok([]string{"get", "processes"}, "NAME", "PHASE", "PID", "RESTARTS", "web", "Running")
	k.ok([]string{"get", "proc", "-o", "wide"}, "COMMAND", "exec sleep 1000")
	if out := k.ok([]string{"get", "proc", "-o", "name"}); strings.TrimSpace(out) != "process.reconciled.dev/web" {
		t.Fatalf("-o name: %q", out)
	}
	k.ok([]string{"get", "proc", "web", "-o", "jsonpath={.status.phase}"}, "Running")
	k.ok([]string{"get", "proc", "-o", "custom-columns=N:.metadata.name,P:.status.phase"}, "N", "web", "Running")
	k.ok([]string{"get", "proc", "web", "-o", "yaml"}, "kind: Process", "resourceVersion:")
	k.ok([]string{"get", "proc", "-l", "tier=front"}, "web")
	if out := k.ok([]string{"get", "proc", "-l", "tier=back"}); !strings.Contains(out, "No resources found") {
		t.Fatalf("-l tier=back: %s", out)
	}
	k.ok([]string{"get", "proc", "--field-selector", "status.phase=Running"}, "web")
	k.ok([]string{"get", "all"}, "process.reconciled.dev/web")
	k.ok([]string{"describe", "process/web"}, "Name:", "web", "Events:", "Started")
	if out, code := k.k(k.kubeconfig, "get", "proc", "nosuch"); code == 0 || !strings.Contains(out, `NotFound`) {
		t.Fatalf("get nosuch: %d %s", code, out)
	}

	// A watch sees a crash restart, as with pods.
	watch := exec.Command(k.kubectl, "--kubeconfig", k.kubeconfig, "get", "proc", "-w")
	watch.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(k.state, "kubecache"))
	var wout strings.Builder
	watch.Stdout, watch.Stderr = &wout, &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	p, _ := k.getProcess("web")
	k.eventually("the watch's first table", func() bool { return strings.Contains(wout.String(), "web") })
	syscall.Kill(p.Status.Pid, syscall.SIGKILL)
	k.eventually("the restart in the watch", func() bool {
		lines := strings.Split(strings.TrimSpace(wout.String()), "\n")
		f := strings.Fields(lines[len(lines)-1])
		return len(lines) >= 2 && len(f) >= 4 && f[0] == "web" && f[3] == "1"
	})
	if n := strings.Count(wout.String(), "NAME"); n != 1 {
		t.Fatalf("the watch printed its header %d times:\n%s", n, wout.String())
	}

	// Writes: through the API's files.
	newProc := writeTemp(t, "api1.yaml", sleeper(k.env, "api1", ""))
	k.ok([]string{"apply", "-f", newProc}, "process.reconciled.dev/api1 created")
	k.waitProcess("api1", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	if _, err := os.Stat(filepath.Join(k.dir, "api", "process-api1.yaml")); err != nil {
		t.Fatalf("apply did not write the API's file: %v", err)
	}
	k.ok([]string{"label", "proc", "api1", "team=ops"}, "labeled")
	k.ok([]string{"annotate", "proc", "api1", "note=hi"}, "annotated")
	k.ok([]string{"patch", "proc", "api1", "--type", "merge", "-p", `{"metadata":{"labels":{"size":"s"}}}`}, "patched")
	k.ok([]string{"get", "proc", "-l", "team=ops,size=s", "-o", "name"}, "process.reconciled.dev/api1")
	k.ok([]string{"apply", "-f", newProc}, "process.reconciled.dev/api1 unchanged")
	writeFile(t, newProc, strings.Replace(sleeper(k.env, "api1", ""), "  name: api1\n", "  name: api1\n  labels: {from: file}\n", 1))
	k.ok([]string{"apply", "-f", newProc}, "process.reconciled.dev/api1 configured")
	k.ok([]string{"get", "proc", "-l", "from=file,team=ops", "-o", "name"}, "process.reconciled.dev/api1")
	// kubectl edit with an editor that changes the command: the program
	// restarts with it.
	before, _ := k.getProcess("api1")
	editor := writeTemp(t, "editor.sh", "#!/bin/sh\nsed -i 's/exec sleep 1000/exec sleep 1001/' \"$1\"\n")
	os.Chmod(editor, 0o755)
	cmd := exec.Command(k.kubectl, "--kubeconfig", k.kubeconfig, "edit", "proc", "api1")
	cmd.Env = append(os.Environ(), "EDITOR="+editor, "KUBECACHEDIR="+filepath.Join(k.state, "kubecache"))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "edited") {
		t.Fatalf("kubectl edit: %v\n%s", err, out)
	}
	k.waitProcess("api1", "restarted with the edited command", func(p process) bool {
		return p.Status.Pid != before.Status.Pid && p.Status.Pid != 0 && strings.Contains(cmdline(p.Status.Pid), "sleep 1001")
	})
	// A server-side dry run checks and answers without writing: the file,
	// the program and the resource stay as they were.
	fileBefore, _ := os.ReadFile(filepath.Join(k.dir, "api", "process-api1.yaml"))
	running, _ := k.getProcess("api1")
	writeFile(t, newProc, strings.Replace(sleeper(k.env, "api1", ""), "exec sleep 1000", "exec sleep 1002", 1))
	k.ok([]string{"apply", "--dry-run=server", "-f", newProc}, "process.reconciled.dev/api1 configured (server dry run)")
	k.ok([]string{"apply", "--dry-run=server", "-f", newProc, "-o", "jsonpath={.spec.command}"}, "sleep 1002")
	k.ok([]string{"delete", "--dry-run=server", "proc", "api1"}, `"api1" deleted (server dry run)`)
	if out, code := k.k(k.kubeconfig, "label", "--dry-run=server", "proc", "web", "x=y"); code == 0 || !strings.Contains(out, "Conflict") {
		t.Fatalf("dry-run label of a file's resource: %d %s", code, out)
	}
	bad = writeTemp(t, "bad-dry.yaml", "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: api1}\nspec: {command: [/bin/true], restartPolicy: Sometimes}\n")
	if out, code := k.k(k.kubeconfig, "apply", "--dry-run=server", "-f", bad); code == 0 || !strings.Contains(out, "restartPolicy") {
		t.Fatalf("dry-run apply of an invalid resource: %d %s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(k.dir, "api", "process-api1.yaml")); !bytes.Equal(after, fileBefore) {
		t.Fatalf("a dry run changed the file:\n%s\nwas\n%s", after, fileBefore)
	}
	if now, ok := k.getProcess("api1"); !ok || now.Status.Pid != running.Status.Pid {
		t.Fatalf("a dry run touched the program: %+v, was pid %d", now.Status, running.Status.Pid)
	}
	// A write from a stale version is a Conflict, as on a cluster.
	if out, code := k.k(k.kubeconfig, "patch", "proc", "api1", "--type", "merge", "-p", `{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}`); code == 0 || !strings.Contains(out, "Conflict") {
		t.Fatalf("stale patch: %d %s", code, out)
	}
	// A resource from a file is changed in its file.
	if out, code := k.k(k.kubeconfig, "label", "proc", "web", "x=y"); code == 0 || !strings.Contains(out, "Conflict") || !strings.Contains(out, "web.yaml") {
		t.Fatalf("label of a file's resource: %d %s", code, out)
	}
	// Without the token (another one): reads work, writes do not.
	if out, code := k.k(k.anonymous, "get", "proc", "web", "-o", "name"); code != 0 || !strings.Contains(out, "process.reconciled.dev/web") {
		t.Fatalf("anonymous read: %d %s", code, out)
	}
	if out, code := k.k(k.anonymous, "delete", "proc", "api1"); code == 0 || !strings.Contains(out, "logged in") {
		t.Fatalf("anonymous delete: %d %s", code, out)
	}
	// kubectl auth can-i asks the daemon (a SelfSubjectAccessReview).
	k.ok([]string{"auth", "can-i", "delete", "processes"}, "yes")
	if out, _ := k.k(k.anonymous, "auth", "can-i", "delete", "processes"); !strings.HasPrefix(strings.TrimSpace(lastLine(out)), "no") {
		t.Fatalf("can-i delete without the token: %s", out)
	}
	if out, _ := k.k(k.anonymous, "auth", "can-i", "list", "processes"); strings.TrimSpace(lastLine(out)) != "yes" {
		t.Fatalf("can-i list without the token: %s", out)
	}
	k.ok([]string{"delete", "proc", "api1"}, `"api1" deleted`)
	k.eventually("api1 gone", func() bool { _, ok := k.getProcess("api1"); return !ok })
}

// cmdline is a process's command line, arguments joined by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// lastLine is the last line of s (kubectl prints warnings before).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
