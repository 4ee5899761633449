// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reconcilectl apply and delete go through the daemon, which writes the
// resource into <dir>/api/, so the change flows through the same watch as
// a git commit: over the unix socket, and over TCP only with the token.
func TestApplyAndDelete(t *testing.T) {
	port := freePort(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	e := newEnv(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--api-token-file", tokenFile)
	e.start()
	e.write("git.yaml", sleeper(e, "fromgit", ""))
	e.waitProcess("fromgit", "Running", func(p process) bool { return p.Status.Phase == "Running" })

	// Over the unix socket.
	src := filepath.Join(t.TempDir(), "web.yaml")
	writeFile(t, src, "# two programs\n"+sleeper(e, "web", "")+"---\n"+sleeper(e, "worker", ""))
	out := e.ctl("apply", "-f", src)
	if !strings.Contains(out, "process/web created") || !strings.Contains(out, "process/worker created") {
		t.Fatalf("apply output: %q", out)
	}
	web := e.waitProcess("web", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	e.waitProcess("worker", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	file := filepath.Join(e.dir, "api", "process-web.yaml")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("applied resource has no file under api/: %v", err)
	}
	if out := e.ctl("apply", "-f", src); !strings.Contains(out, "process/web unchanged") {
		t.Fatalf("second apply: %q, want unchanged", out)
	}
	// A spec change restarts the program, as a file edit does.
	writeFile(t, src, strings.Replace(sleeper(e, "web", ""), "sleep", "sleep ", 1))
	if out := e.ctl("apply", "-f", src); !strings.Contains(out, "process/web configured") {
		t.Fatalf("changed apply: %q, want configured", out)
	}
	e.waitProcess("web", "restarted with the new spec", func(p process) bool {
		return p.Status.Phase == "Running" && p.Status.Pid != web.Status.Pid && p.Status.ObservedGeneration == p.Metadata.Generation
	})

	// An invalid document is refused before anything is sent: exit 1,
	// FILE:LINE: field.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: broken}\nspec:\n  command: []\n")
	out, _, code := e.ctlQuiet("apply", "-f", bad)
	if code != 1 || !strings.Contains(out, bad+":5: spec.command") {
		t.Fatalf("apply of an invalid file: exit %d, %q", code, out)
	}
	// A resource from a git-managed file is not the API's to change.
	gitCopy := filepath.Join(t.TempDir(), "git.yaml")
	writeFile(t, gitCopy, sleeper(e, "fromgit", ""))
	out, errs, code := e.ctlQuiet("apply", "-f", gitCopy)
	if code != 1 || !strings.Contains(errs, "git.yaml") || !strings.Contains(errs, "change it there") {
		t.Fatalf("apply over a git-managed resource: exit %d, %q %q", code, out, errs)
	}
	if _, errs, code := e.ctlQuiet("delete", "process/fromgit"); code != 1 || !strings.Contains(errs, "change it there") {
		t.Fatalf("delete of a git-managed resource: exit %d, %q", code, errs)
	}

	// Over TCP: the daemon answers 422 with field paths to a direct
	// request, 401 without the token.
	base := fmt.Sprintf("http://127.0.0.1:%d/apis/reconciled.dev/v1alpha1/processes/", port)
	put := func(name, body, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, base+name, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := put("tcp", sleeper(e, "tcp", ""), ""); code != http.StatusUnauthorized {
		t.Fatalf("PUT over TCP without a token: %d, want 401", code)
	}
	code, body := put("broken", "apiVersion: reconciled.dev/v1alpha1\nkind: Process\nmetadata: {name: broken}\nspec:\n  command: []\n  restartPolicy: Sometimes\n", "s3cret")
	var st struct {
		Reason  string
		Details struct {
			Causes []struct {
				Field string
				Line  int
			}
		}
	}
	json.Unmarshal([]byte(body), &st)
	if code != http.StatusUnprocessableEntity || st.Reason != "Invalid" || len(st.Details.Causes) != 2 ||
		st.Details.Causes[0].Field != "spec.command" || st.Details.Causes[1].Field != "spec.restartPolicy" {
		t.Fatalf("PUT of an invalid resource: %d %s", code, body)
	}
	if code, body := put("tcp", sleeper(e, "tcp", ""), "s3cret"); code != http.StatusCreated {
		t.Fatalf("PUT with the token: %d %s", code, body)
	}
	e.waitProcess("tcp", "Running", func(p process) bool { return p.Status.Phase == "Running" })
	tokenArgs := []string{"--server", fmt.Sprintf("http://127.0.0.1:%d", port), "--token-file", tokenFile}
	if _, errs, code := e.ctlQuiet(append(tokenArgs[:2:2], "delete", "process/tcp")...); code != 1 || !strings.Contains(errs, "token") {
		t.Fatalf("delete over TCP without the token: exit %d %q", code, errs)
	}
	if out := e.ctl(append(tokenArgs, "delete", "process/tcp")...); !strings.Contains(out, "process/tcp deleted") {
		t.Fatalf("delete over TCP: %q", out)
	}

	// Delete through the socket: the program stops and the file is gone.
	last, _ := e.getProcess("web")
	if !alive(last.Status.Pid) {
		t.Fatalf("web's program %d is not running before the delete", last.Status.Pid)
	}
	e.ctl("delete", "process/web")
	e.eventually("web deleted", func() bool { _, ok := e.getProcess("web"); return !ok })
	e.eventually("web's program stopped", func() bool { return !alive(last.Status.Pid) })
	e.eventually("tcp deleted", func() bool { _, ok := e.getProcess("tcp"); return !ok })
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
	if _, errs, code := e.ctlQuiet("delete", "process/web"); code != 1 || !strings.Contains(errs, "not found") {
		t.Fatalf("delete of a deleted resource: exit %d %q", code, errs)
	}
}
