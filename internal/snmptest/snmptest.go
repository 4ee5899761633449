// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package snmptest runs a real SNMP agent, Debian's net-snmp snmpd, dressed
// up as a PoE switch for tests. A pass_persist helper (testdata/poe-pass.py)
// serves POWER-ETHERNET-MIB pethPsePortAdminEnable for ports 1..Ports of PSE
// group 1, the BRIDGE-MIB forwarding table (dot1dTpFdbTable) and, when asked
// for, dot1dBasePortIfIndex. Every SET the switch accepts is recorded, so a
// test can check the exact off/on sequence a controller produced.
//
// The agent listens on 127.0.0.1 with a free UDP port (or inside a network
// namespace, see Options), answers SNMPv2c for the communities "private"
// (read-write) and "public" (read-only), and SNMPv3 for a read-write user
// with SHA authentication and AES privacy and a read-only user with the
// same protocols. Its persistent state stays in the test's temp dir, never
// in /var/lib/snmp. The test's Cleanup always stops it.
//
// Start skips the test when snmpd or python3 is not installed (make test
// installs them: hack/install-test-deps.sh), unless SNMPTEST_REQUIRE=1,
// which makes it fail instead.
package snmptest

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reconciled/reconciled/internal/fixture"
	"github.com/reconciled/reconciled/internal/syncbuf"

	"github.com/gosnmp/gosnmp"
)

// StartTimeout bounds how long Start waits for snmpd to answer.
const StartTimeout = 15 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

//go:embed testdata/poe-pass.py
var passHelper []byte

//go:embed testdata/fdb.txt
var defaultFDB []byte

// OIDs the switch serves, without the leading dot.
const (
	// OIDAdminEnable is pethPsePortAdminEnable; append ".1.<port>".
	OIDAdminEnable = "1.3.6.1.2.1.105.1.1.1.3"
	// OIDFdbPort is dot1dTpFdbPort; append the MAC's six bytes in decimal.
	OIDFdbPort = "1.3.6.1.2.1.17.4.3.1.2"
	// OIDBasePortIfIndex is dot1dBasePortIfIndex; append the bridge port.
	OIDBasePortIfIndex = "1.3.6.1.2.1.17.1.4.1.2"
)

// V3 is an SNMPv3 user the switch knows. The protocols are spelled as in
// PiNode's spec.switch.v3 (SHA, AES); the password files hold the password
// and a newline, as the spec's authPasswordFile and privPasswordFile would.
type V3 struct {
	User                               string
	AuthProtocol, AuthPassword         string
	PrivProtocol, PrivPassword         string
	AuthPasswordFile, PrivPasswordFile string
}

// FDBRow is one row of the switch's forwarding table: MAC learned on Port.
type FDBRow struct {
	Port int
	MAC  string
}

// Set is one SET of pethPsePortAdminEnable the switch accepted.
type Set struct {
	// At is when the switch applied it (millisecond resolution).
	At time.Time
	// Port is the PSE port; On is true for 1 (true), false for 2 (false).
	Port int
	On   bool
}

// Options change the switch Start runs. The zero value is what Start uses.
type Options struct {
	// Ports is the number of PoE ports (1..Ports), all on at start; zero means 8.
	Ports int
	// FDB is the forwarding table; nil means testdata/fdb.txt (the
	// recipe's four entries on ports 1, 2, 3 and 5).
	FDB []FDBRow
	// IfIndex maps bridge ports to ifIndex (dot1dBasePortIfIndex); nil
	// leaves the table out, as many small switches do.
	IfIndex map[int]int
	// Namespace runs snmpd inside this network namespace (ip netns exec;
	// needs root). Start then waits for snmpd's own "started" log line
	// instead of asking it over the network.
	Namespace string
	// ListenIP is the IPv4 address to listen on; empty means 127.0.0.1.
	// The communities and users are accepted from any source address.
	ListenIP string
	// Port is the UDP port; zero means a free port on the host, or 161
	// inside a Namespace.
	Port int
}

// Switch is a running (or stopped) snmpd playing a PoE switch.
type Switch struct {
	// Addr is the agent's host:port.
	Addr string
	// Community is the read-write SNMPv2c community, ROCommunity the
	// read-only one; CommunityFile holds Community and a newline.
	Community, ROCommunity, CommunityFile string
	// V3 is a read-write SNMPv3 user (authPriv), ReadOnlyV3 a read-only one.
	V3, ReadOnlyV3 V3
	// Ports is the number of PoE ports.
	Ports int

	t                         fixture.TB
	dir                       string
	state, sets, fdb, ifindex string
	argv, env                 []string // snmpd's command line and environment, for Restart
	inNamespace               bool
	mu                        sync.Mutex
	cmd                       *exec.Cmd     // nil once stopped
	done                      chan struct{} // closed when cmd has exited
	out                       *syncbuf.Buffer
}

// Start runs a switch with the default Options for the test; see the
// package doc for when it skips.
func Start(t fixture.TB) *Switch {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs a switch with opts for the test, waiting until it answers
// (at most StartTimeout); see the package doc for when it skips.
func StartWith(t fixture.TB, opts Options) *Switch {
	t.Helper()
	snmpd, err := exec.LookPath("snmpd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/snmpd"); serr == nil {
			snmpd, err = "/usr/sbin/snmpd", nil
		}
	}
	python, perr := exec.LookPath("python3")
	if err != nil || perr != nil {
		skip(t, "snmptest: snmpd (Debian package snmpd) or python3 is not installed (make test installs them: hack/install-test-deps.sh)")
	}
	if opts.Namespace != "" && os.Geteuid() != 0 {
		skip(t, "snmptest: running snmpd in a network namespace needs root")
	}
	if opts.Ports == 0 {
		opts.Ports = 8
	}
	if opts.ListenIP == "" {
		opts.ListenIP = "127.0.0.1"
	}
	// Not t.TempDir: snmpd splits -c at commas, and pass_persist its
	// command at spaces, and subtest names have both.
	dir, err := os.MkdirTemp("", "snmptest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after Stop, registered below
	if strings.ContainsAny(dir, ", \t") {
		t.Fatalf("snmptest: temp dir %q has a comma or blank, which snmpd cannot take (set TMPDIR)", dir)
	}
	s := &Switch{
		Community: "private", ROCommunity: "public", CommunityFile: filepath.Join(dir, "community"),
		V3: V3{User: "poeadmin", AuthProtocol: "SHA", AuthPassword: "poeauthpass1", PrivProtocol: "AES", PrivPassword: "poeprivpass1",
			AuthPasswordFile: filepath.Join(dir, "poeadmin-auth"), PrivPasswordFile: filepath.Join(dir, "poeadmin-priv")},
		ReadOnlyV3: V3{User: "poereader", AuthProtocol: "SHA", AuthPassword: "readauthpass1", PrivProtocol: "AES", PrivPassword: "readprivpass1",
			AuthPasswordFile: filepath.Join(dir, "poereader-auth"), PrivPasswordFile: filepath.Join(dir, "poereader-priv")},
		Ports: opts.Ports, t: t, dir: dir,
		state: filepath.Join(dir, "poe-state.txt"), sets: filepath.Join(dir, "poe-sets.log"),
		fdb: filepath.Join(dir, "fdb.txt"), ifindex: filepath.Join(dir, "ifindex.txt"),
	}
	helper := filepath.Join(dir, "poe-pass.py")
	files := map[string][]byte{
		helper:                        passHelper,
		s.CommunityFile:               []byte(s.Community + "\n"),
		s.V3.AuthPasswordFile:         []byte(s.V3.AuthPassword + "\n"),
		s.V3.PrivPasswordFile:         []byte(s.V3.PrivPassword + "\n"),
		s.ReadOnlyV3.AuthPasswordFile: []byte(s.ReadOnlyV3.AuthPassword + "\n"),
		s.ReadOnlyV3.PrivPasswordFile: []byte(s.ReadOnlyV3.PrivPassword + "\n"),
	}
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if opts.FDB == nil {
		if err := os.WriteFile(s.fdb, defaultFDB, 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		s.SetFDB(opts.FDB)
	}
	if opts.IfIndex != nil {
		var b strings.Builder
		for p, i := range opts.IfIndex {
			fmt.Fprintf(&b, "%d %d\n", p, i)
		}
		if err := os.WriteFile(s.ifindex, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	persist := filepath.Join(dir, "persist")
	if err := os.Mkdir(persist, 0o700); err != nil {
		t.Fatal(err)
	}
	pass := python + " -u " + helper // pass_persist takes a command line
	conf := func(listen string) string {
		c := fmt.Sprintf(`agentAddress %s
rocommunity %s default
rwcommunity %s default
createUser %s SHA "%s" AES "%s"
rwuser %s priv
createUser %s SHA "%s" AES "%s"
rouser %s priv
sysDescr fake PoE switch (net-snmp + poe-pass.py, internal/snmptest)
pass_persist .%s %s
pass_persist .1.3.6.1.2.1.17.4.3 %s
`, listen, s.ROCommunity, s.Community,
			s.V3.User, s.V3.AuthPassword, s.V3.PrivPassword, s.V3.User,
			s.ReadOnlyV3.User, s.ReadOnlyV3.AuthPassword, s.ReadOnlyV3.PrivPassword, s.ReadOnlyV3.User,
			"1.3.6.1.2.1.105.1.1.1", pass, pass)
		if opts.IfIndex != nil {
			c += "pass_persist .1.3.6.1.2.1.17.1.4 " + pass + "\n"
		}
		return c
	}
	env := append(os.Environ(), "SNMP_PERSISTENT_DIR="+persist, "MIBS=", "MIBDIRS=/nonexistent",
		"POE_STATE="+s.state, "POE_LOG="+s.sets, "POE_FDB="+s.fdb, "POE_PORTS="+strconv.Itoa(opts.Ports))
	if opts.IfIndex != nil {
		env = append(env, "POE_IFINDEX="+s.ifindex)
	}
	t.Cleanup(s.Stop)

	confPath := filepath.Join(dir, "snmpd.conf")
	deadline := time.Now().Add(StartTimeout)
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 && opts.Namespace != "" {
			port = 161
		} else if port == 0 {
			port = freeUDPPort(t, opts.ListenIP)
		}
		s.Addr = net.JoinHostPort(opts.ListenIP, strconv.Itoa(port))
		if err := os.WriteFile(confPath, []byte(conf("udp:"+s.Addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"-f", "-C", "-c", confPath, "-Lo", "-p", filepath.Join(dir, "snmpd.pid")}
		s.argv, s.env, s.inNamespace = append([]string{snmpd}, args...), env, opts.Namespace != ""
		if opts.Namespace != "" {
			s.argv = append([]string{"ip", "netns", "exec", opts.Namespace}, s.argv...)
		}
		err := s.launch(deadline)
		if err == nil {
			return s
		}
		exited := errors.Is(err, errExited)
		s.Stop()
		if exited && opts.Port == 0 && opts.Namespace == "" && attempt < 5 && time.Now().Before(deadline) {
			continue // the free port was taken in between: try another one
		}
		t.Fatalf("snmptest: snmpd on %s: %v; its log:\n%s", s.Addr, err, s.Log())
	}
}

// launch starts snmpd with s.argv and s.env and waits until it is ready.
func (s *Switch) launch(deadline time.Time) error {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	out := &syncbuf.Buffer{}
	cmd.Env, cmd.Stdout, cmd.Stderr = s.env, out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("snmptest: start snmpd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	return s.waitReady(s.inNamespace, done, deadline)
}

// Restart starts snmpd again, as a switch whose agent comes back after an
// outage: on the same address and port, with the same communities and
// users, and with the ports' power and the record of SETs (Sets) kept from
// before. A running switch is stopped first. Restart waits until the agent
// answers (at most StartTimeout); it fails the test when snmpd cannot start
// again, e.g. because another program took its port meanwhile.
func (s *Switch) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.launch(time.Now().Add(StartTimeout)); err != nil {
		log := s.Log()
		s.Stop()
		s.t.Fatalf("snmptest: restart snmpd on %s: %v; its log:\n%s", s.Addr, err, log)
	}
}

var errExited = errors.New("snmpd exited")

// waitReady waits until snmpd has logged that it started (it logs that
// after binding its listener) and, outside a namespace, answers a GET.
func (s *Switch) waitReady(inNamespace bool, exited <-chan struct{}, deadline time.Time) error {
	for !strings.Contains(s.Log(), "NET-SNMP version") {
		select {
		case <-exited:
			return errExited
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no start message within %v", StartTimeout)
		}
	}
	if inNamespace {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	p, _ := strconv.Atoi(port)
	for {
		g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Community: s.ROCommunity, Version: gosnmp.Version2c,
			Timeout: 200 * time.Millisecond, Retries: 0}
		if err := g.Connect(); err != nil {
			return err
		}
		res, err := g.Get([]string{".1.3.6.1.2.1.1.1.0"})
		// A socket that got the very port it sends to reads its own
		// request back: only a Response with sysDescr is snmpd.
		if err == nil && res.PDUType == gosnmp.GetResponse && len(res.Variables) == 1 &&
			res.Variables[0].Type == gosnmp.OctetString {
			// Start the pass_persist helpers (snmpd does on first use), so
			// that a test's first request does not wait for python.
			g.Timeout = StartTimeout
			_, err = g.GetNext([]string{"." + OIDAdminEnable, "." + OIDFdbPort, "." + OIDBasePortIfIndex})
			g.Conn.Close()
			return err
		}
		g.Conn.Close()
		if err == nil {
			err = fmt.Errorf("not an answer from snmpd: %v %v", res.PDUType, res.Variables)
		}
		select {
		case <-exited:
			return errExited
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", StartTimeout, err)
		}
	}
}

// freeUDPPort returns a UDP port on ip that was free a moment ago.
func freeUDPPort(t fixture.TB, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func skip(t fixture.TB, msg string) {
	t.Helper()
	fixture.SkipOrFail(t, msg, "SNMPTEST_REQUIRE")
}

// Stop stops snmpd (SIGTERM, then SIGKILL after 5 s) and waits until it
// has exited; its pass_persist helpers exit with it. The switch then no
// longer answers, as one that lost power (Restart brings it back). Stop
// does nothing when the switch is stopped; Cleanup calls it.
func (s *Switch) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Log returns what snmpd logged so far.
func (s *Switch) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Sets returns the SETs of pethPsePortAdminEnable the switch accepted, in
// order; none yet is an empty slice.
func (s *Switch) Sets() []Set {
	s.t.Helper()
	b, err := os.ReadFile(s.sets)
	if errors.Is(err, os.ErrNotExist) {
		return []Set{}
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1] // a line being written is not a set yet
	} else {
		b = nil
	}
	sets := []Set{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "<unix time> port <p> admin <v>"
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[1] != "port" || f[3] != "admin" {
			s.t.Fatalf("snmptest: bad set log line %q", sc.Text())
		}
		secs, err1 := strconv.ParseFloat(f[0], 64)
		port, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || (f[4] != "1" && f[4] != "2") {
			s.t.Fatalf("snmptest: bad set log line %q", sc.Text())
		}
		sets = append(sets, Set{At: time.UnixMilli(int64(secs * 1000)), Port: port, On: f[4] == "1"})
	}
	return sets
}

// PortSets returns the on/off values of the accepted SETs for one port, in
// order, with a value repeated right away folded into one: [false, true]
// is an off-then-on power cycle. (A client that times out sends its SET
// again, and the switch applies both; Sets has them all.)
func (s *Switch) PortSets(port int) []bool {
	s.t.Helper()
	vals := []bool{}
	for _, set := range s.Sets() {
		if set.Port == port && (len(vals) == 0 || vals[len(vals)-1] != set.On) {
			vals = append(vals, set.On)
		}
	}
	return vals
}

// Power reports whether the port's pethPsePortAdminEnable is true (on),
// as the switch holds it now. Ports start on.
func (s *Switch) Power(port int) bool {
	s.t.Helper()
	st := s.states()
	on, ok := st[port]
	if !ok {
		s.t.Fatalf("snmptest: the switch has no port %d (ports 1..%d)", port, s.Ports)
	}
	return on
}

// SetPower sets the port's power directly in the switch's state, as a
// person at the switch would; it is not recorded as a SET.
func (s *Switch) SetPower(port int, on bool) {
	s.t.Helper()
	st := s.states()
	if _, ok := st[port]; !ok {
		s.t.Fatalf("snmptest: the switch has no port %d (ports 1..%d)", port, s.Ports)
	}
	st[port] = on
	ports := make([]int, 0, len(st))
	for p := range st {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	var b strings.Builder
	for _, p := range ports {
		v := 2
		if st[p] {
			v = 1
		}
		fmt.Fprintf(&b, "%d %d\n", p, v)
	}
	s.writeAtomic(s.state, b.String())
}

// states reads the helper's state file (ports 1..Ports, on unless the file
// says otherwise).
func (s *Switch) states() map[int]bool {
	st := make(map[int]bool, s.Ports)
	for p := 1; p <= s.Ports; p++ {
		st[p] = true
	}
	b, err := os.ReadFile(s.state)
	if errors.Is(err, os.ErrNotExist) {
		return st
	}
	if err != nil {
		s.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		p, err1 := strconv.Atoi(f[0])
		v, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			st[p] = v == 1
		}
	}
	return st
}

// SetFDB replaces the switch's forwarding table; the next walk sees it.
func (s *Switch) SetFDB(rows []FDBRow) {
	s.t.Helper()
	var b strings.Builder
	for _, r := range rows {
		hw, err := net.ParseMAC(r.MAC)
		if err != nil || len(hw) != 6 {
			s.t.Fatalf("snmptest: FDB row %v: not a MAC", r)
		}
		fmt.Fprintf(&b, "%d %s\n", r.Port, hw)
	}
	s.writeAtomic(s.fdb, b.String())
}

func (s *Switch) writeAtomic(path, content string) {
	s.t.Helper()
	tmp := path + ".snmptest.tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		s.t.Fatal(err)
	}
}
