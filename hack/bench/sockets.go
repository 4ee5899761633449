// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/reconciled/reconciled/test/fixtures"
	"github.com/reconciled/reconciled/test/fixtures/connloop"
)

// sockets kills the same server (test/e2e/testdata/listenprog) 100 times
// with SIGKILL while one client keeps connecting (retrying every 10 ms),
// under reconciled (spec.sockets), supervisord (the server binds its own
// socket at each start: supervisord cannot hold one) and systemd with a
// .socket unit in the sandbox (the anchor), one after the other in the
// same run. It counts the connections refused.
func (b *bench) sockets() []row {
	kills := 100
	if *quick {
		kills = 10
	}
	prog := filepath.Join(b.work, "listenprog")
	if out, err := exec.Command("go", "build", "-o", prog, "./test/e2e/testdata/listenprog").CombinedOutput(); err != nil {
		fatalf("build listenprog: %v\n%s", err, out)
	}
	client := func(argv0 []string, env []string, addr string) (connloop.Result, error) {
		run := func(kills int) ([]byte, error) {
			args := append(argv0, "client", "-addr", addr, "-kills", strconv.Itoa(kills), "-timeout", "4m")
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = env
			return cmd.Output()
		}
		// Until the first answer the server is starting: not counted.
		if out, err := run(0); err != nil {
			return connloop.Result{}, fmt.Errorf("first answer: %v: %s", err, out)
		}
		out, err := run(kills)
		var r connloop.Result
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &r); jerr != nil {
			return r, fmt.Errorf("client: %v %v: %s", err, jerr, out)
		}
		return r, err
	}

	// reconciled
	dir, state := b.newDirs("sockets")
	port := freePort()
	writeProcess(dir, "lp", fmt.Sprintf("[%q, serve]", prog), fmt.Sprintf("  backoff: {initial: 100ms, max: 100ms}\n  sockets: [{listen: \"tcp://127.0.0.1:%d\"}]\n", port))
	d := b.startDaemon(dir, state)
	ours, err := client([]string{prog}, nil, fmt.Sprintf("tcp://127.0.0.1:%d", port))
	d.stop()
	if err != nil {
		fatalf("sockets: reconciled: %v (%+v)", err, ours)
	}
	logf("sockets: reconciled, %d kill -9: %s", kills, ours)

	// supervisord
	rows := []row{}
	port = freePort()
	var sup connloop.Result
	supCmd, supErr := b.supervisord("lp", fmt.Sprintf("%s serve -listen tcp://127.0.0.1:%d", prog, port))
	if supErr == nil {
		sup, supErr = client([]string{prog}, nil, fmt.Sprintf("tcp://127.0.0.1:%d", port))
		supCmd.Process.Signal(syscall.SIGTERM)
		supCmd.Wait()
	}
	if supErr != nil {
		logf("sockets: supervisord: %v", supErr)
	} else {
		logf("sockets: supervisord, %d kill -9: %s", kills, sup)
	}

	// systemd, a .socket unit and its service in the sandbox
	sd, sdErr := b.systemdSockets(prog, kills, client)
	if sdErr != nil {
		logf("sockets: systemd: %v", sdErr)
	} else {
		logf("sockets: systemd .socket, %d kill -9: %s", kills, sd)
	}

	add := func(peer string, r connloop.Result, err error) {
		x := row{what: fmt.Sprintf("connections refused, %d kill -9 of a server (client retries every 10 ms), vs %s", kills, peer),
			ours: strconv.Itoa(ours.Refused), target: "0 (as systemd .socket)"}
		y := row{what: fmt.Sprintf("%d kill -9 and restarts (backoff 100 ms), client to client, vs %s", kills, peer),
			ours: fmt.Sprintf("%.1f s", ours.ElapsedMS/1000)}
		if err == nil {
			x.peer = strconv.Itoa(r.Refused)
			y.peer = fmt.Sprintf("%.1f s", r.ElapsedMS/1000)
			y.ratio = fmt.Sprintf("%.2fx", r.ElapsedMS/ours.ElapsedMS)
		}
		rows = append(rows, x, y)
	}
	add("supervisord", sup, supErr)
	add("systemd .socket", sd, sdErr)
	rows = append(rows, row{what: "longest request across a restart (it waits in the backlog), vs systemd .socket",
		ours: fmt.Sprintf("%.0f ms", ours.MaxWaitMS), peer: fmt.Sprintf("%.0f ms", sd.MaxWaitMS), ratio: fmt.Sprintf("%.2fx", sd.MaxWaitMS/ours.MaxWaitMS)})
	return rows
}

// systemdSockets runs the kill loop against a .socket unit in a sandboxed
// systemd: the client runs inside the sandbox's namespaces, where the
// server's pids are.
func (b *bench) systemdSockets(prog string, kills int, client func([]string, []string, string) (connloop.Result, error)) (connloop.Result, error) {
	sb := b.startSandbox()
	defer sb.stop()
	share := sb.vars["SDTEST_SHARE_DIR"]
	bin := filepath.Join(share, "listenprog")
	data, err := os.ReadFile(prog)
	check(err)
	check(os.WriteFile(bin, data, 0o755))
	units := fmt.Sprintf(`cat > /etc/systemd/system/lp.socket <<'EOF'
[Socket]
ListenStream=127.0.0.1:7777
EOF
cat > /etc/systemd/system/lp.service <<'EOF'
[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=%s serve
Restart=always
RestartSec=100ms
EOF
systemctl daemon-reload && systemctl start lp.socket`, bin)
	if out, err := sb.script("exec", "sh", "-c", units); err != nil {
		return connloop.Result{}, fmt.Errorf("units: %v\n%s", err, out)
	}
	return client([]string{"hack/systemd-sandbox.sh", "exec", bin}, sb.env, "tcp://127.0.0.1:7777")
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() int { return fixtures.FreePort(&onFatal) }
