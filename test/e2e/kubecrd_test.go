// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	if _, err := exec.LookPath("kubectl"); err != nil {
		fixtures.SkipOrFail(t, "kubectl is not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	api := newKubeAPI(t)
	k := func(args ...string) (string, error) { return api.Kubectl("admin", args...) }
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
