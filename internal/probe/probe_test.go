// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reconciled/reconciled/test/fixtures/waitfor"

	"golang.org/x/sys/unix"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// invalidHost never resolves (RFC 6761); the test resolver answers NXDOMAIN
// from loopback, so no query leaves the machine.
const invalidHost = "nonexistent.invalid"

// fakeDNS answers every query with NXDOMAIN on a loopback UDP port.
type fakeDNS struct {
	conn    net.PacketConn
	queries atomic.Int64
}

func startFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	f := &fakeDNS{conn: pc}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := nxdomain(buf[:n]); resp != nil {
				f.queries.Add(1)
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return f
}

// nxdomain builds a "name error" answer echoing the question of q.
func nxdomain(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	end := i + 1 + 4 // root label, type, class
	if end > len(q) {
		return nil
	}
	resp := []byte{
		q[0], q[1], // id
		0x80 | q[2]&0x79,       // QR, opcode, RD
		0x80 | 3,               // RA, NXDOMAIN
		0, 1, 0, 0, 0, 0, 0, 0, // one question, no records
	}
	return append(resp, q[12:end]...)
}

// resolver sends every DNS query to the fake server.
func (f *fakeDNS) resolver() *net.Resolver {
	addr := f.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// newTestProber returns a Prober whose resolver is the fake DNS server.
func newTestProber(t *testing.T) (*Prober, *fakeDNS) {
	t.Helper()
	dns := startFakeDNS(t)
	p := NewProber()
	p.resolver = dns.resolver()
	return p, dns
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// fullBacklog returns the address of a loopback listener that never accepts
// and whose accept queue is full, so the kernel drops further SYNs and a
// connect neither succeeds nor fails until its deadline.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Skip("could not fill the accept queue (tcp_abort_on_overflow?)")
	return ""
}

// tcpServer accepts connections and reads each until the peer goes away,
// so the client side is the one closing.
func tcpServer(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	return l
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Within(t, timeout, what, cond)
}

type probeCase struct {
	name       string
	spec       v1alpha1.LinkSpec
	timeout    time.Duration
	wantOK     bool
	wantReason string
	wantMsg    string // substring of Message
	minLatency time.Duration
}

func runCases(t *testing.T, p *Prober, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			before := time.Now()
			r := p.Probe(context.Background(), &tc.spec, timeout)
			if r.OK != tc.wantOK || r.Reason != tc.wantReason {
				t.Fatalf("got OK=%v Reason=%q Message=%q, want OK=%v Reason=%q",
					r.OK, r.Reason, r.Message, tc.wantOK, tc.wantReason)
			}
			if !strings.Contains(r.Message, tc.wantMsg) {
				t.Errorf("Message = %q, want it to contain %q", r.Message, tc.wantMsg)
			}
			if len(r.Message) > MaxMessage {
				t.Errorf("Message has %d bytes, want at most %d", len(r.Message), MaxMessage)
			}
			if r.At.Before(before) || r.At.After(time.Now()) {
				t.Errorf("At = %v, not within the probe", r.At)
			}
			if r.Latency < tc.minLatency {
				t.Errorf("Latency = %v, want at least %v", r.Latency, tc.minLatency)
			}
			if r.Latency < 0 || r.Latency > time.Since(before) {
				t.Errorf("Latency = %v out of range", r.Latency)
			}
		})
	}
}

func TestProbeSpec(t *testing.T) {
	p := NewProber()
	runCases(t, p, []probeCase{
		{name: "none", spec: v1alpha1.LinkSpec{}, wantReason: ReasonError, wantMsg: "exactly one"},
		{name: "two", spec: v1alpha1.LinkSpec{
			TCP:  &v1alpha1.TCPCheck{Address: "127.0.0.1:1"},
			Exec: &v1alpha1.ExecCheck{Command: []string{"true"}},
		}, wantReason: ReasonError, wantMsg: "found 2"},
		{name: "empty command", spec: v1alpha1.LinkSpec{Exec: &v1alpha1.ExecCheck{}}, wantReason: ReasonError},
	})
	if r := p.Probe(context.Background(), nil, time.Second); r.OK || r.Reason != ReasonError {
		t.Errorf("nil spec: got %+v", r)
	}
}

func TestProbeTCP(t *testing.T) {
	p, dns := newTestProber(t)
	l := tcpServer(t)
	runCases(t, p, []probeCase{
		{name: "up", spec: v1alpha1.LinkSpec{TCP: &v1alpha1.TCPCheck{Address: l.Addr().String()}}, wantOK: true},
		{name: "refused", spec: v1alpha1.LinkSpec{TCP: &v1alpha1.TCPCheck{Address: closedPort(t)}},
			wantReason: ReasonRefused, wantMsg: "refused"},
		{name: "dns", spec: v1alpha1.LinkSpec{TCP: &v1alpha1.TCPCheck{Address: invalidHost + ":80"}},
			wantReason: ReasonDNS, wantMsg: invalidHost},
		// The handshake never completes, so the probe takes the path that
		// waits on Go's poller and must give up at its deadline.
		{name: "timeout", spec: v1alpha1.LinkSpec{TCP: &v1alpha1.TCPCheck{Address: fullBacklog(t)}},
			timeout: 300 * time.Millisecond, wantReason: ReasonTimeout, minLatency: 300 * time.Millisecond},
	})
	if dns.queries.Load() == 0 {
		t.Error("the test resolver saw no query")
	}
}

// timeWait counts TCP sockets in TIME_WAIT with port at either end.
func timeWait(t *testing.T, port int) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("cannot count TIME_WAIT sockets: %v", err)
	}
	defer func() { _ = f.Close() }()
	hexPort := fmt.Sprintf(":%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "06" {
			continue
		}
		if strings.HasSuffix(fields[1], hexPort) || strings.HasSuffix(fields[2], hexPort) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /proc/net/tcp: %v", err)
	}
	return n
}

func TestProbeTCPLeavesNoTimeWait(t *testing.T) {
	const probes = 3000
	p := NewProber()
	l := tcpServer(t)
	port := l.Addr().(*net.TCPAddr).Port
	spec := &v1alpha1.LinkSpec{TCP: &v1alpha1.TCPCheck{Address: l.Addr().String()}}

	before := timeWait(t, port)
	for i := range probes {
		if r := p.Probe(context.Background(), spec, 5*time.Second); !r.OK {
			t.Fatalf("probe %d: %+v", i, r)
		}
	}
	grown := timeWait(t, port) - before
	t.Logf("TIME_WAIT sockets after %d probes: +%d", probes, grown)
	if grown > probes/10 {
		t.Errorf("TIME_WAIT grew by %d after %d probes, want (almost) none", grown, probes)
	}

	// Control: plain closes do leave TIME_WAIT, so the count above means
	// something.
	const plain = 50
	base := timeWait(t, port)
	for range plain {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = c.Close()
	}
	eventually(t, 10*time.Second, "TIME_WAIT sockets from plain closes", func() bool {
		return timeWait(t, port)-base >= plain/2
	})
}

func TestProbeHTTP(t *testing.T) {
	p, _ := newTestProber(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "circuit A2RTR is up\n") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "broken", http.StatusInternalServerError) })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		// The marker lies beyond the first MiB and must not be seen.
		_, _ = w.Write([]byte(strings.Repeat("x", maxBody)))
		_, _ = io.WriteString(w, "MARKER")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tlsSrv := httptest.NewUnstartedServer(mux)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	sock := filepath.Join(shortTempDir(t), "api.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen unix: %v", err)
	}
	unixSrv := &httptest.Server{Listener: ul, Config: &http.Server{Handler: mux}}
	unixSrv.Start()
	t.Cleanup(unixSrv.Close)

	h := func(url string) v1alpha1.LinkSpec {
		return v1alpha1.LinkSpec{HTTP: &v1alpha1.HTTPProbe{URL: url}}
	}
	with := func(s v1alpha1.LinkSpec, f func(*v1alpha1.HTTPProbe)) v1alpha1.LinkSpec {
		f(s.HTTP)
		return s
	}
	const slowTimeout = 300 * time.Millisecond
	runCases(t, p, []probeCase{
		{name: "200", spec: h(srv.URL + "/ok"), wantOK: true, wantMsg: "200"},
		{name: "200 expected", spec: with(h(srv.URL+"/ok"), func(x *v1alpha1.HTTPProbe) { x.ExpectStatus = []int{200} }), wantOK: true},
		{name: "500 expect 200", spec: with(h(srv.URL+"/fail"), func(x *v1alpha1.HTTPProbe) { x.ExpectStatus = []int{200} }),
			wantReason: ReasonUnexpectedStatus, wantMsg: "500"},
		{name: "500 default", spec: h(srv.URL + "/fail"), wantReason: ReasonUnexpectedStatus, wantMsg: "2xx or 3xx"},
		{name: "418 expected", spec: with(h(srv.URL+"/teapot"), func(x *v1alpha1.HTTPProbe) { x.ExpectStatus = []int{200, 418} }), wantOK: true},
		{name: "404", spec: h(srv.URL + "/missing"), wantReason: ReasonUnexpectedStatus, wantMsg: "404"},
		{name: "redirect followed", spec: with(h(srv.URL+"/redirect"), func(x *v1alpha1.HTTPProbe) { x.ExpectStatus = []int{200} }), wantOK: true},
		{name: "redirect loop", spec: h(srv.URL + "/loop"), wantReason: ReasonError, wantMsg: "10 redirects"},
		{name: "body match", spec: with(h(srv.URL+"/ok"), func(x *v1alpha1.HTTPProbe) { x.ExpectBody = "A2RTR.*up" }), wantOK: true},
		{name: "body mismatch", spec: with(h(srv.URL+"/ok"), func(x *v1alpha1.HTTPProbe) { x.ExpectBody = "A2RTR.*down" }),
			wantReason: ReasonUnexpectedBody, wantMsg: "A2RTR is up"},
		{name: "body beyond 1MiB ignored", spec: with(h(srv.URL+"/big"), func(x *v1alpha1.HTTPProbe) { x.ExpectBody = "MARKER" }),
			wantReason: ReasonUnexpectedBody},
		{name: "invalid regexp", spec: with(h(srv.URL+"/ok"), func(x *v1alpha1.HTTPProbe) { x.ExpectBody = "(" }),
			wantReason: ReasonError, wantMsg: "expectBody"},
		{name: "refused", spec: h("http://" + closedPort(t) + "/"), wantReason: ReasonRefused},
		{name: "dns", spec: h("http://" + invalidHost + "/"), wantReason: ReasonDNS, wantMsg: invalidHost},
		{name: "slow", spec: h(srv.URL + "/slow"), timeout: slowTimeout, wantReason: ReasonTimeout, minLatency: slowTimeout},
		{name: "tls untrusted", spec: h(tlsSrv.URL + "/ok"), wantReason: ReasonTLS, wantMsg: "certificate"},
		{name: "https to plain http", spec: h(strings.Replace(srv.URL, "http:", "https:", 1) + "/ok"), wantReason: ReasonTLS},
		{name: "plain http to tls", spec: h(strings.Replace(tlsSrv.URL, "https:", "http:", 1) + "/ok"), wantReason: ReasonUnexpectedStatus, wantMsg: "400"},
		{name: "unix socket", spec: with(h("http://localhost/ok"), func(x *v1alpha1.HTTPProbe) {
			x.UnixSocket = sock
			x.ExpectBody = "A2RTR.*up"
		}), wantOK: true},
		{name: "unix socket ignores url host", spec: with(h("http://"+invalidHost+"/ok"), func(x *v1alpha1.HTTPProbe) { x.UnixSocket = sock }), wantOK: true},
		{name: "unix socket missing", spec: with(h("http://localhost/ok"), func(x *v1alpha1.HTTPProbe) {
			x.UnixSocket = filepath.Join(filepath.Dir(sock), "missing.sock")
		}), wantReason: ReasonRefused},
		{name: "bad url", spec: h("http://[::1/"), wantReason: ReasonError},
	})
}

// shortTempDir returns a temporary directory whose paths fit sun_path.
func shortTempDir(t *testing.T) string {
	dir := t.TempDir()
	if len(dir) < 80 {
		return dir
	}
	dir, err := os.MkdirTemp("", "probe")
	if err != nil {
		t.Fatalf("mkdtemp: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestProbeHTTPFreshConnectionPerProbe(t *testing.T) {
	p := NewProber()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	spec := &v1alpha1.LinkSpec{HTTP: &v1alpha1.HTTPProbe{URL: srv.URL}}
	for range 5 {
		if r := p.Probe(context.Background(), spec, 5*time.Second); !r.OK {
			t.Fatalf("probe: %+v", r)
		}
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("5 probes used %d connections, want 5", n)
	}
}

func TestProbeRegexpCache(t *testing.T) {
	p := NewProber()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up") }))
	t.Cleanup(srv.Close)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			spec := &v1alpha1.LinkSpec{HTTP: &v1alpha1.HTTPProbe{URL: srv.URL, ExpectBody: "^u" + strconv.Itoa(i%2) + "?p"}}
			if r := p.Probe(context.Background(), spec, 5*time.Second); !r.OK {
				t.Errorf("probe: %+v", r)
			}
		})
	}
	wg.Wait()
	p.reMu.RLock()
	defer p.reMu.RUnlock()
	if len(p.regexps) != 2 {
		t.Errorf("cache holds %d patterns, want 2", len(p.regexps))
	}
}

func TestProbeExec(t *testing.T) {
	p := NewProber()
	exec := func(argv ...string) v1alpha1.LinkSpec {
		return v1alpha1.LinkSpec{Exec: &v1alpha1.ExecCheck{Command: argv}}
	}
	runCases(t, p, []probeCase{
		{name: "true", spec: exec("true"), wantOK: true},
		{name: "false", spec: exec("false"), wantReason: ReasonExecFailed, wantMsg: "exit status 1"},
		{name: "output kept", spec: exec("sh", "-c", "echo up"), wantOK: true, wantMsg: "up"},
		{name: "stderr and failure", spec: exec("sh", "-c", "echo circuit down >&2; exit 3"), wantReason: ReasonExecFailed, wantMsg: "circuit down"},
		{name: "long output trimmed", spec: exec("sh", "-c", "i=0; while [ $i -lt 200 ]; do printf 0123456789; i=$((i+1)); done"),
			wantOK: true, wantMsg: "0123456789"},
		{name: "not found", spec: exec("/nonexistent/check-link"), wantReason: ReasonExecFailed, wantMsg: "no such file"},
		{name: "timeout", spec: exec("sleep", "30"), timeout: 200 * time.Millisecond, wantReason: ReasonTimeout, minLatency: 200 * time.Millisecond},
	})
	r := p.Probe(context.Background(), &v1alpha1.LinkSpec{Exec: &v1alpha1.ExecCheck{Command: []string{"sh", "-c", "printf '%02000d' 0"}}}, 5*time.Second)
	if !r.OK || len(r.Message) != MaxMessage {
		t.Errorf("long output: OK=%v len(Message)=%d, want true and %d", r.OK, len(r.Message), MaxMessage)
	}
}

// TestProbeExecTimeoutKillsGroup checks that a timed-out command and its
// children are killed, not left running.
func TestProbeExecTimeoutKillsGroup(t *testing.T) {
	p := NewProber()
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	spec := &v1alpha1.LinkSpec{Exec: &v1alpha1.ExecCheck{Command: []string{
		"sh", "-c", `sleep 30 & echo $! > "$1"; wait`, "sh", pidFile}}}
	r := p.Probe(context.Background(), spec, time.Second)
	if r.Reason != ReasonTimeout {
		t.Fatalf("got %+v, want Timeout", r)
	}
	if r.Latency > 10*time.Second {
		t.Errorf("Latency = %v: the probe waited for the child", r.Latency)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the command did not record the sleep pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	eventually(t, 10*time.Second, fmt.Sprintf("sleep (pid %d) to be gone", pid), func() bool { return gone(pid) })
}

// gone reports whether pid no longer runs (absent, or a zombie awaiting
// reaping by its new parent).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func TestProbeICMP(t *testing.T) {
	p, _ := newTestProber(t)
	t.Run("dns", func(t *testing.T) {
		r := p.Probe(context.Background(), &v1alpha1.LinkSpec{ICMP: &v1alpha1.ICMPProbe{Host: invalidHost}}, 5*time.Second)
		if r.OK || r.Reason != ReasonDNS {
			t.Fatalf("got %+v, want DNSError", r)
		}
	})
	t.Run("loopback", func(t *testing.T) {
		r := p.Probe(context.Background(), &v1alpha1.LinkSpec{ICMP: &v1alpha1.ICMPProbe{Host: "127.0.0.1"}}, 5*time.Second)
		if !r.OK && (strings.Contains(r.Message, "icmp socket") || isPermissionMessage(r.Message)) {
			t.Skipf("neither raw nor unprivileged ICMP sockets are allowed here: %s", r.Message)
		}
		if !r.OK {
			t.Fatalf("got %+v, want OK", r)
		}
		if r.Latency <= 0 || r.Latency > 5*time.Second {
			t.Errorf("Latency = %v", r.Latency)
		}
	})
}

func isPermissionMessage(msg string) bool {
	return strings.Contains(msg, "operation not permitted") || strings.Contains(msg, "permission denied")
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ReasonRefused},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, ReasonUnreachable},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, ReasonUnreachable},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), ReasonTimeout},
		{&net.DNSError{Err: "no such host", Name: invalidHost, IsNotFound: true}, ReasonDNS},
		{errors.New("tls: handshake failure"), ReasonTLS},
		{context.Canceled, ReasonError},
		{errors.New("something else"), ReasonError},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestTrimMessage(t *testing.T) {
	long := strings.Repeat("é", MaxMessage) // 2 bytes each
	got := trimMessage("  " + long + "\n")
	if len(got) > MaxMessage || !strings.HasPrefix(long, got) || len(got) < MaxMessage-1 {
		t.Errorf("trimMessage cut to %d bytes, prefix=%v", len(got), strings.HasPrefix(long, got))
	}
}
