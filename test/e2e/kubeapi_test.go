// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconciled/reconciled/test/fixtures/kubetest"
)

// kubeAPI is a kubetest.Server for one test, its log shown on failure.
type kubeAPI struct {
	*kubetest.Server
	t *testing.T
}

// newKubeAPI starts etcd and the API server; each user ("NAME@GROUP,...")
// gets a token.
func newKubeAPI(t *testing.T, users ...string) *kubeAPI {
	t.Helper()
	s := kubetest.Start(t, users...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver and etcd log (tail):\n%s", tail(s.Log.String(), 4000))
		}
	})
	return &kubeAPI{Server: s, t: t}
}

// start runs the API server again after stop.
func (k *kubeAPI) start() {
	k.t.Helper()
	if err := k.StartAPIServer(); err != nil {
		k.t.Fatal(err)
	}
}

// stop ends the API server (etcd keeps the data).
func (k *kubeAPI) stop() { k.StopAPIServer() }

// kubeconfig writes a kubeconfig for user.
func (k *kubeAPI) kubeconfig(user string) string {
	p := filepath.Join(k.t.TempDir(), "kubeconfig")
	if err := k.Kubeconfig(user, p); err != nil {
		k.t.Fatal(err)
	}
	return p
}

// kubectl runs the real kubectl as user; it returns the combined output
// and whether it succeeded.
func (k *kubeAPI) kubectl(user string, args ...string) (string, bool) {
	out, err := k.Kubectl(user, args...)
	return out, err == nil
}

// must runs kubectl as admin and fails the test unless it succeeds.
func (k *kubeAPI) must(args ...string) string {
	k.t.Helper()
	out, ok := k.kubectl("admin", args...)
	if !ok {
		k.t.Fatalf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// tail is the end of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
