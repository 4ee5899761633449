// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/syncbuf"
	"github.com/reconciled/reconciled/test/fixtures/waitfor"
)

// kubeAPI is a real etcd and kube-apiserver on loopback (the binaries
// hack/kube/build.sh builds into ~/.cache/kube-e2e/bin, as
// hack/kube/up.sh starts them), with static tokens: "admin" in
// system:masters and one per extra user. The API server can be stopped and
// started again on the same port (a partition, for the agents).
type kubeAPI struct {
	t                *testing.T
	bin, dir, server string
	etcdURL          string
	port             int
	tokens           map[string]string // user -> token
	apiserver        *exec.Cmd
	log              *syncbuf.Buffer
}

// kubeBin returns the folder of the kube-apiserver binaries, or skips
// (fails under CI) when they are not built.
func kubeBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KUBE_BIN")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "kube-e2e", "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			fixtures.SkipOrFail(t, "no "+b+" in "+bin+" (hack/kube/build.sh builds it, about 12 minutes once; .ci/run does)")
		}
	}
	return bin
}

// newKubeAPI starts etcd and the API server; each user ("NAME@GROUP,...")
// gets a token.
func newKubeAPI(t *testing.T, users ...string) *kubeAPI {
	t.Helper()
	k := &kubeAPI{t: t, bin: kubeBin(t), dir: t.TempDir(), tokens: map[string]string{}, log: &syncbuf.Buffer{}}
	var csv strings.Builder
	for _, spec := range append([]string{"admin@system:masters"}, users...) {
		u, groups, _ := strings.Cut(spec, "@")
		b := make([]byte, 16)
		rand.Read(b)
		k.tokens[u] = hex.EncodeToString(b)
		fmt.Fprintf(&csv, "%s,%s,%s-uid,%q\n", k.tokens[u], u, u, groups)
	}
	writeFile(t, filepath.Join(k.dir, "tokens.csv"), csv.String())
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writeFile(t, filepath.Join(k.dir, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	writeFile(t, filepath.Join(k.dir, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	ep, pp := freePort(t), freePort(t)
	k.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ep)
	etcd := exec.Command(filepath.Join(k.bin, "etcd"), "--name", "e2e", "--data-dir", filepath.Join(k.dir, "etcd"), "--unsafe-no-fsync",
		"--listen-client-urls", k.etcdURL, "--advertise-client-urls", k.etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", pp), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", pp),
		"--initial-cluster", fmt.Sprintf("e2e=http://127.0.0.1:%d", pp), "--log-level", "warn")
	etcd.Stdout, etcd.Stderr = k.log, k.log
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Process.Signal(syscall.SIGTERM); etcd.Wait() })
	waitfor.Within(t, time.Minute, "etcd healthy", func() bool {
		resp, err := http.Get(k.etcdURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	k.port = freePort(t)
	k.server = fmt.Sprintf("https://127.0.0.1:%d", k.port)
	k.start()
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("kube-apiserver and etcd log (tail):\n%s", tail(k.log.String(), 4000))
		}
	})
	return k
}

// start runs the API server and waits until it is ready.
func (k *kubeAPI) start() {
	k.t.Helper()
	cmd := exec.Command(filepath.Join(k.bin, "kube-apiserver"), "--etcd-servers="+k.etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", k.port), "--cert-dir="+filepath.Join(k.dir, "certs"), "--token-auth-file="+filepath.Join(k.dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(k.dir, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(k.dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none", "--enable-priority-and-fairness=false")
	cmd.Stdout, cmd.Stderr = k.log, k.log
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.apiserver = cmd
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	waitfor.Within(k.t, 2*time.Minute, "kube-apiserver ready", func() bool {
		req, _ := http.NewRequest("GET", k.server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+k.tokens["admin"])
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// stop ends the API server (etcd keeps the data).
func (k *kubeAPI) stop() {
	if k.apiserver != nil {
		k.apiserver.Process.Signal(syscall.SIGTERM)
		k.apiserver.Wait()
		k.apiserver = nil
	}
}

// kubeconfig writes a kubeconfig for user.
func (k *kubeAPI) kubeconfig(user string) string {
	return writeTemp(k.t, "kubeconfig-"+strings.ReplaceAll(user, ":", "-"), fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: u}
current-context: e2e
`, k.server, k.tokens[user]))
}

// kubectl runs the real kubectl as user; it returns the combined output
// and whether it succeeded.
func (k *kubeAPI) kubectl(user string, args ...string) (string, bool) {
	cmd := exec.Command("kubectl", append([]string{"--server", k.server, "--token", k.tokens[user], "--insecure-skip-tls-verify"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(k.dir, "kubecache-"+strings.ReplaceAll(user, ":", "-")))
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
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
