// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures"
)

// The CustomResourceDefinitions of deploy/crds install into a real
// kube-apiserver (built from Go modules by hack/kube/build.sh, about 12
// minutes cold, so this runs under make torture), and every example
// resource passes `kubectl apply --dry-run=server` against them.
func TestTortureCRDsInKubeAPIServer(t *testing.T) {
	if os.Getenv("RECONCILED_TORTURE") != "1" {
		t.Skip("builds and runs a real kube-apiserver: make torture")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		fixtures.SkipOrFail(t, "kubectl is not installed")
	}
	bin := os.Getenv("KUBE_BIN")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "kube-e2e", "bin")
	}
	if _, err := os.Stat(filepath.Join(bin, "kube-apiserver")); err != nil {
		fixtures.SkipOrFail(t, "no kube-apiserver in "+bin+" (hack/kube/build.sh builds it)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	up := exec.Command(filepath.Join(root, "hack", "kube", "up.sh"), t.TempDir())
	up.Env = append(os.Environ(), "BIN="+bin)
	out, err := up.Output()
	if err != nil {
		t.Fatalf("up.sh: %v\n%s", err, out)
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			vars[k] = v
		}
	}
	for _, p := range []string{vars["APISERVER_PID"], vars["ETCD_PID"]} {
		if pid, err := strconv.Atoi(p); err == nil {
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
		}
	}
	k := func(args ...string) (string, error) {
		cmd := exec.Command(kubectl, append([]string{"--server", vars["KUBE_SERVER"], "--token", vars["KUBE_TOKEN"], "--insecure-skip-tls-verify"}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECACHEDIR="+t.TempDir())
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := k("apply", "-f", filepath.Join(root, "deploy", "crds")); err != nil {
		t.Fatalf("apply the CRDs: %v\n%s", err, out)
	}
	if out, err := k("wait", "--for", "condition=established", "--timeout", "60s", "crd", "--all"); err != nil {
		t.Fatalf("CRDs not established: %v\n%s", err, out)
	}
	if out, err := k("api-resources", "--api-group", "reconciled.dev"); err != nil || !strings.Contains(out, "processes") || !strings.Contains(out, "chk") {
		t.Fatalf("api-resources: %v\n%s", err, out)
	}
	checked := 0
	filepath.WalkDir(filepath.Join(root, "examples"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte("apiVersion: reconciled.dev/v1alpha1")) {
			return nil // a settings file, not resources
		}
		if out, err := k("apply", "--dry-run=server", "-f", p); err != nil {
			t.Errorf("%s against the CRDs: %v\n%s", p, err, out)
		}
		checked++
		return nil
	})
	if checked < 5 {
		t.Fatalf("only %d example files checked", checked)
	}
	t.Logf("%d example files pass kubectl apply --dry-run=server against the CRDs", checked)
}
