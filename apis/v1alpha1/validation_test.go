// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
func ptr[T any](v T) *T                    { return &v }

func om(name string) ObjectMeta { return ObjectMeta{Name: name} }

// The realistic examples of INTERFACE.md, as a user would write them: only
// what the example sets, no defaults spelled out unless the example does.

func exampleProcess() *Process {
	return &Process{
		TypeMeta:   typeMeta(KindProcess),
		ObjectMeta: ObjectMeta{Name: "pydecnet", Labels: map[string]string{"site": "hecnet"}},
		Spec: ProcessSpec{
			Command:           []string{"/opt/hecnet/bin/pydecnet", "/etc/decnet/theark.conf"},
			WorkingDir:        "/var/lib/decnet",
			Env:               map[string]string{"PYTHONUNBUFFERED": "1"},
			User:              "decnet",
			Stdout:            "/var/log/decnet/launch-info.log",
			Stderr:            "/var/log/decnet/status-error.log",
			RemoveBeforeStart: []string{"/tmp/decnetapi.sock"},
			RestartOnChange:   []string{"/etc/decnet/theark.conf"},
			Readiness:         &Readiness{Notify: true},
			Watchdog:          dur(30 * time.Second),
		},
	}
}

func exampleLink() *Link {
	return &Link{
		TypeMeta:   typeMeta(KindLink),
		ObjectMeta: om("a2rtr"),
		Spec:       LinkSpec{TCP: &TCPCheck{Address: "a2rtr.example.net:700"}, DegradedLatency: dur(250 * time.Millisecond)},
	}
}

func exampleModule() *Module {
	return &Module{
		TypeMeta:   typeMeta(KindModule),
		ObjectMeta: om("sensor-reader"),
		Spec: ModuleSpec{
			Description:      "Reads the sensors",
			Exec:             []string{"/opt/modules/sensor/venv/bin/python", "main.py"},
			WorkingDirectory: "/opt/modules/sensor",
			User:             "modules",
			Environment:      map[string]string{"PYTHONUNBUFFERED": "1"},
			RestartSec:       dur(5 * time.Second),
			After:            []string{"network.target", "mosquitto.service"},
			Extra:            map[string]map[string]DirectiveValue{"Service": {"MemoryMax": {"200M"}}},
		},
	}
}

func examplePiNode() *PiNode {
	return &PiNode{
		TypeMeta:   typeMeta(KindPiNode),
		ObjectMeta: om("pi-10"),
		Spec: PiNodeSpec{
			MAC:    "dc:a6:32:01:02:03",
			IP:     "172.16.7.10",
			Switch: SwitchPort{Address: "172.16.7.129:161", Port: 10, Community: "private"},
			Image:  &ImageSource{URL: "file:///srv/images/raspios-lite.img", SHA256: strings.Repeat("ab", 32)},
		},
	}
}

func exampleAlertRoute() *AlertRoute {
	return &AlertRoute{
		TypeMeta:   typeMeta(KindAlertRoute),
		ObjectMeta: om("ops-email"),
		Spec: AlertRouteSpec{
			Match: AlertMatch{
				Kinds:    []string{"Link", "Process"},
				Names:    []string{"a2rtr", "pydecnet*"},
				Labels:   map[string]string{"site": "hecnet"},
				Severity: SeverityWarning,
			},
			Receivers: []Receiver{
				{Email: &EmailReceiver{
					Smarthost: "smtp.example.net:587", StartTLS: true, Username: "alerts@example.net",
					PasswordFile: "/etc/reconciled/smtp-password", From: "alerts@example.net", To: []string{"ops@example.net"},
				}},
				{Webhook: &WebhookReceiver{URL: "http://127.0.0.1:9000/hook"}},
				{Alertmanager: &AlertmanagerReceiver{URL: "http://127.0.0.1:9093"}},
				{Exec: &ExecCheck{Command: []string{"/usr/local/bin/page-me"}}},
				{Log: &LogReceiver{}},
			},
		},
	}
}

// TestDefault checks that the realistic examples get exactly the
// documented defaults, that values already set are kept, and that
// defaulting twice changes nothing.
func TestDefault(t *testing.T) {
	tests := map[string]struct {
		in   Object
		want func() Object
	}{
		"Process": {
			in: exampleProcess(),
			want: func() Object {
				p := exampleProcess()
				p.Spec.RestartPolicy = RestartAlways
				p.Spec.Backoff = &Backoff{Initial: dur(100 * time.Millisecond), Max: dur(time.Minute), ResetAfter: dur(10 * time.Minute)}
				p.Spec.StopSignal = "SIGTERM"
				p.Spec.StopTimeout = dur(10 * time.Second)
				return p
			},
		},
		"Process with partial backoff and tcp readiness": {
			in: func() Object {
				p := exampleProcess()
				p.Spec.Backoff = &Backoff{Max: dur(5 * time.Second)}
				p.Spec.RestartPolicy = RestartNever
				p.Spec.Readiness = &Readiness{TCP: &TCPCheck{Address: "localhost:80"}}
				p.Spec.Watchdog = nil
				return p
			}(),
			want: func() Object {
				p := exampleProcess()
				p.Spec.RestartPolicy = RestartNever
				p.Spec.Backoff = &Backoff{Initial: dur(100 * time.Millisecond), Max: dur(5 * time.Second), ResetAfter: dur(10 * time.Minute)}
				p.Spec.StopSignal = "SIGTERM"
				p.Spec.StopTimeout = dur(10 * time.Second)
				p.Spec.Readiness = &Readiness{TCP: &TCPCheck{Address: "localhost:80"}, Period: dur(time.Second), Timeout: dur(time.Second)}
				p.Spec.Watchdog = nil
				return p
			},
		},
		"Link": {
			in: exampleLink(),
			want: func() Object {
				l := exampleLink()
				l.Spec.Interval = dur(30 * time.Second)
				l.Spec.Timeout = dur(5 * time.Second)
				l.Spec.FailureThreshold = 3
				l.Spec.SuccessThreshold = 1
				return l
			},
		},
		"Link with short interval gets timeout capped at interval": {
			in: func() Object {
				l := exampleLink()
				l.Spec.Interval = dur(2 * time.Second)
				return l
			}(),
			want: func() Object {
				l := exampleLink()
				l.Spec.Interval = dur(2 * time.Second)
				l.Spec.Timeout = dur(2 * time.Second)
				l.Spec.FailureThreshold = 3
				l.Spec.SuccessThreshold = 1
				return l
			},
		},
		"Module": {
			in: exampleModule(),
			want: func() Object {
				m := exampleModule()
				m.Spec.Type = "simple"
				m.Spec.Restart = "on-failure"
				m.Spec.State = "Running"
				m.Spec.Enabled = ptr(true)
				m.Spec.Scope = "system"
				m.Spec.UnitName = "sensor-reader.service"
				return m
			},
		},
		"Module with enabled false and own unit name keeps them": {
			in: func() Object {
				m := exampleModule()
				m.Spec.Enabled = ptr(false)
				m.Spec.UnitName = "sensor@1.service"
				m.Spec.Scope = "user"
				return m
			}(),
			want: func() Object {
				m := exampleModule()
				m.Spec.Type = "simple"
				m.Spec.Restart = "on-failure"
				m.Spec.State = "Running"
				m.Spec.Enabled = ptr(false)
				m.Spec.Scope = "user"
				m.Spec.UnitName = "sensor@1.service"
				return m
			},
		},
		"PiNode": {
			in: examplePiNode(),
			want: func() Object {
				n := examplePiNode()
				n.Spec.Power = "On"
				n.Spec.InstallGeneration = ptr[int64](1)
				return n
			},
		},
		"PiNode installGeneration 0 is kept": {
			in: func() Object {
				n := examplePiNode()
				n.Spec.InstallGeneration = ptr[int64](0)
				n.Spec.Power = "Off"
				return n
			}(),
			want: func() Object {
				n := examplePiNode()
				n.Spec.InstallGeneration = ptr[int64](0)
				n.Spec.Power = "Off"
				return n
			},
		},
		"AlertRoute": {
			in: exampleAlertRoute(),
			want: func() Object {
				a := exampleAlertRoute()
				a.Spec.GroupWait = dur(30 * time.Second)
				a.Spec.RepeatInterval = dur(4 * time.Hour)
				a.Spec.SendResolved = ptr(true)
				return a
			},
		},
		"AlertRoute without severity gets info": {
			in: func() Object {
				a := exampleAlertRoute()
				a.Spec.Match = AlertMatch{}
				a.Spec.SendResolved = ptr(false)
				return a
			}(),
			want: func() Object {
				a := exampleAlertRoute()
				a.Spec.Match = AlertMatch{Severity: SeverityInfo}
				a.Spec.GroupWait = dur(30 * time.Second)
				a.Spec.RepeatInterval = dur(4 * time.Hour)
				a.Spec.SendResolved = ptr(false)
				return a
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.in.Default()
			if diff := cmp.Diff(tc.want(), tc.in); diff != "" {
				t.Errorf("Default() mismatch (-want +got):\n%s", diff)
			}
			if errs := tc.in.Validate(); len(errs) != 0 {
				t.Errorf("Validate() of a valid example: %v", errs)
			}
			tc.in.Default()
			if diff := cmp.Diff(tc.want(), tc.in); diff != "" {
				t.Errorf("second Default() changed the object (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidate checks that each invalid object reports exactly the
// expected field paths.
func TestValidate(t *testing.T) {
	proc := func(mut func(*Process)) Object { p := exampleProcess(); mut(p); return p }
	link := func(mut func(*Link)) Object { l := exampleLink(); mut(l); return l }
	mod := func(mut func(*Module)) Object { m := exampleModule(); mut(m); return m }
	pi := func(mut func(*PiNode)) Object { n := examplePiNode(); mut(n); return n }
	route := func(mut func(*AlertRoute)) Object { a := exampleAlertRoute(); mut(a); return a }
	tests := map[string]struct {
		obj  Object
		want []string // field paths, sorted
	}{
		// Every kind's example is valid.
		"valid Process": {obj: exampleProcess()},
		"valid Link":    {obj: exampleLink()},
		"valid Module":  {obj: exampleModule()},
		"Module with an X- section and an instance unit": {obj: mod(func(m *Module) {
			m.Spec.UnitName = "sensor@1.service"
			m.Spec.Extra = map[string]map[string]DirectiveValue{"X-Reconciled": {"Owner": {"ops"}}}
		})},
		"valid PiNode":     {obj: examplePiNode()},
		"valid AlertRoute": {obj: exampleAlertRoute()},
		"valid minimal Process": {obj: &Process{TypeMeta: typeMeta(KindProcess), ObjectMeta: om("p"),
			Spec: ProcessSpec{Command: []string{"sleep", "1"}}}},
		"valid Link of each probe": {obj: link(func(l *Link) {
			l.Spec.TCP = nil
			l.Spec.HTTP = &HTTPProbe{URL: "http://localhost/api/circuits", UnixSocket: "/tmp/decnetapi.sock", ExpectStatus: []int{200}, ExpectBody: "A2RTR.*up"}
		})},
		"valid signal spellings": {obj: proc(func(p *Process) { p.Spec.StopSignal = "hup" })},
		"valid numeric signal":   {obj: proc(func(p *Process) { p.Spec.StopSignal = "15" })},
		"valid 63-char name":     {obj: proc(func(p *Process) { p.Name = strings.Repeat("a", 63) })},

		// Metadata, shared by every kind.
		"apiVersion wrong":        {obj: proc(func(p *Process) { p.APIVersion = "reconciled.dev/v1" }), want: []string{"apiVersion"}},
		"apiVersion missing":      {obj: link(func(l *Link) { l.APIVersion = "" }), want: []string{"apiVersion"}},
		"name missing":            {obj: pi(func(n *PiNode) { n.Name = "" }), want: []string{"metadata.name"}},
		"name with uppercase":     {obj: proc(func(p *Process) { p.Name = "PyDECnet" }), want: []string{"metadata.name"}},
		"name with 64 chars":      {obj: link(func(l *Link) { l.Name = strings.Repeat("a", 64) }), want: []string{"metadata.name"}},
		"name with dot":           {obj: route(func(a *AlertRoute) { a.Name = "ops.email" }), want: []string{"metadata.name"}},
		"name with leading dash":  {obj: proc(func(p *Process) { p.Name = "-x" }), want: []string{"metadata.name"}},
		"negative generation":     {obj: proc(func(p *Process) { p.Generation = -1 }), want: []string{"metadata.generation"}},
		"label value with spaces": {obj: proc(func(p *Process) { p.Labels = map[string]string{"site": "the ark"} }), want: []string{"metadata.labels"}},
		"backoff under the floor": {obj: proc(func(p *Process) {
			p.Spec.Backoff = &Backoff{Initial: dur(time.Nanosecond), Max: dur(time.Second), ResetAfter: dur(time.Minute)}
		}), want: []string{"spec.backoff.initial"}},
		"annotations over 256 KiB":   {obj: proc(func(p *Process) { p.Annotations = map[string]string{"big": strings.Repeat("x", 256<<10)} }), want: []string{"metadata.annotations"}},
		"annotation key with spaces": {obj: proc(func(p *Process) { p.Annotations = map[string]string{"bad key": "x"} }), want: []string{"metadata.annotations[bad key]"}},

		// Process.
		"process command missing":     {obj: proc(func(p *Process) { p.Spec.Command = nil }), want: []string{"spec.command"}},
		"process command empty argv0": {obj: proc(func(p *Process) { p.Spec.Command = []string{"", "x"} }), want: []string{"spec.command"}},
		"process command with NUL":    {obj: proc(func(p *Process) { p.Spec.Command = []string{"/bin/x", "a\x00b"} }), want: []string{"spec.command[1]"}},
		"process restartPolicy":       {obj: proc(func(p *Process) { p.Spec.RestartPolicy = "Sometimes" }), want: []string{"spec.restartPolicy"}},
		"process restartPolicy case":  {obj: proc(func(p *Process) { p.Spec.RestartPolicy = "always" }), want: []string{"spec.restartPolicy"}},
		"process backoff max < initial": {obj: proc(func(p *Process) {
			p.Spec.Backoff = &Backoff{Initial: dur(time.Minute), Max: dur(time.Second)}
		}), want: []string{"spec.backoff.max"}},
		"process backoff negative resetAfter": {obj: proc(func(p *Process) {
			p.Spec.Backoff = &Backoff{ResetAfter: dur(-time.Second)}
		}), want: []string{"spec.backoff.resetAfter"}},
		"valid sockets": {obj: proc(func(p *Process) {
			p.Spec.Sockets = []Socket{{Listen: "tcp://:8080"}, {Name: "dns", Listen: "udp://[::1]:53"},
				{Listen: "unix:///run/svc/api.sock", Mode: "660", Owner: "root", Group: "0", Backlog: 16}, {Listen: "tcp://127.0.0.1:0"}, {Listen: "tcp://127.0.0.1:0"}}
		})},
		"socket listen problems": {obj: proc(func(p *Process) {
			p.Spec.Sockets = []Socket{{Listen: ""}, {Listen: "http://x:80"}, {Listen: "tcp://x"}, {Listen: "tcp://x:99999"},
				{Listen: "unix://relative.sock"}, {Listen: "unix:///" + strings.Repeat("a", 120)}, {Listen: "tcp://x:08"}, {Listen: "unix:///a/../b"}}
		}), want: []string{"spec.sockets[0].listen", "spec.sockets[1].listen", "spec.sockets[2].listen", "spec.sockets[3].listen",
			"spec.sockets[4].listen", "spec.sockets[5].listen", "spec.sockets[6].listen", "spec.sockets[7].listen"}},
		"socket duplicate listen": {obj: proc(func(p *Process) {
			p.Spec.Sockets = []Socket{{Listen: "tcp://:80"}, {Listen: "tcp://:80"}}
		}), want: []string{"spec.sockets[1].listen"}},
		"socket options": {obj: proc(func(p *Process) {
			p.Spec.Sockets = []Socket{{Name: "a:b", Listen: "tcp://:80", Mode: "0600"}, {Listen: "udp://:53", Backlog: 5},
				{Listen: "unix:///run/x.sock", Mode: "999", Owner: "a b"}, {Listen: "tcp://:81", Backlog: 70000}}
		}), want: []string{"spec.sockets[0].mode", "spec.sockets[0].name", "spec.sockets[1].backlog", "spec.sockets[2].mode",
			"spec.sockets[2].owner", "spec.sockets[3].backlog"}},
		"process stopSignal unknown":  {obj: proc(func(p *Process) { p.Spec.StopSignal = "SIGNOPE" }), want: []string{"spec.stopSignal"}},
		"process stopSignal 0":        {obj: proc(func(p *Process) { p.Spec.StopSignal = "0" }), want: []string{"spec.stopSignal"}},
		"process stopTimeout zero":    {obj: proc(func(p *Process) { p.Spec.StopTimeout = dur(0) }), want: []string{"spec.stopTimeout"}},
		"process relative workingDir": {obj: proc(func(p *Process) { p.Spec.WorkingDir = "decnet" }), want: []string{"spec.workingDir"}},
		"process relative stdout":     {obj: proc(func(p *Process) { p.Spec.Stdout = "out.log" }), want: []string{"spec.stdout"}},
		"process env name with =":     {obj: proc(func(p *Process) { p.Spec.Env = map[string]string{"A=B": "1"} }), want: []string{"spec.env[A=B]"}},
		"process removeBeforeStart relative": {obj: proc(func(p *Process) {
			p.Spec.RemoveBeforeStart = []string{"/ok", "tmp/sock"}
		}), want: []string{"spec.removeBeforeStart[1]"}},
		"process restartOnChange empty": {obj: proc(func(p *Process) { p.Spec.RestartOnChange = []string{""} }), want: []string{"spec.restartOnChange[0]"}},
		"process watchdog without notify": {obj: proc(func(p *Process) {
			p.Spec.Readiness = nil
		}), want: []string{"spec.watchdog"}},
		"process watchdog with tcp readiness": {obj: proc(func(p *Process) {
			p.Spec.Readiness = &Readiness{TCP: &TCPCheck{Address: "localhost:80"}}
		}), want: []string{"spec.watchdog"}},
		"process watchdog zero":  {obj: proc(func(p *Process) { p.Spec.Watchdog = dur(0) }), want: []string{"spec.watchdog"}},
		"process readiness none": {obj: proc(func(p *Process) { p.Spec.Readiness = &Readiness{}; p.Spec.Watchdog = nil }), want: []string{"spec.readiness"}},
		"process readiness two checks": {obj: proc(func(p *Process) {
			p.Spec.Readiness = &Readiness{Notify: true, Exec: &ExecCheck{Command: []string{"/bin/true"}}}
		}), want: []string{"spec.readiness"}},
		"process readiness tcp without port": {obj: proc(func(p *Process) {
			p.Spec.Readiness = &Readiness{TCP: &TCPCheck{Address: "localhost"}}
			p.Spec.Watchdog = nil
		}), want: []string{"spec.readiness.tcp.address"}},
		"process readiness http bad": {obj: proc(func(p *Process) {
			p.Spec.Readiness = &Readiness{HTTP: &HTTPCheck{URL: "ftp://x/", UnixSocket: "sock", ExpectStatus: []int{200, 99}}}
			p.Spec.Watchdog = nil
		}), want: []string{"spec.readiness.http.expectStatus[1]", "spec.readiness.http.unixSocket", "spec.readiness.http.url"}},
		"process readiness period negative": {obj: proc(func(p *Process) {
			p.Spec.Readiness = &Readiness{Exec: &ExecCheck{Command: []string{"/bin/true"}}, Period: dur(-1)}
			p.Spec.Watchdog = nil
		}), want: []string{"spec.readiness.period"}},

		// Link.
		"link no probe": {obj: link(func(l *Link) { l.Spec.TCP = nil }), want: []string{"spec"}},
		"link two probes": {obj: link(func(l *Link) {
			l.Spec.ICMP = &ICMPProbe{Host: "a2rtr.example.net"}
		}), want: []string{"spec"}},
		"link tcp address without port":  {obj: link(func(l *Link) { l.Spec.TCP.Address = "a2rtr.example.net" }), want: []string{"spec.tcp.address"}},
		"link tcp port out of range":     {obj: link(func(l *Link) { l.Spec.TCP.Address = "a2rtr.example.net:70000" }), want: []string{"spec.tcp.address"}},
		"link icmp without host":         {obj: link(func(l *Link) { l.Spec.TCP = nil; l.Spec.ICMP = &ICMPProbe{} }), want: []string{"spec.icmp.host"}},
		"link exec without command":      {obj: link(func(l *Link) { l.Spec.TCP = nil; l.Spec.Exec = &ExecCheck{} }), want: []string{"spec.exec.command"}},
		"link timeout exceeds interval":  {obj: link(func(l *Link) { l.Spec.Interval = dur(time.Second); l.Spec.Timeout = dur(2 * time.Second) }), want: []string{"spec.timeout"}},
		"link timeout zero":              {obj: link(func(l *Link) { l.Spec.Timeout = dur(0) }), want: []string{"spec.timeout"}},
		"link interval zero":             {obj: link(func(l *Link) { l.Spec.Interval = dur(0) }), want: []string{"spec.interval", "spec.timeout"}},
		"link failureThreshold negative": {obj: link(func(l *Link) { l.Spec.FailureThreshold = -1 }), want: []string{"spec.failureThreshold"}},
		"link successThreshold negative": {obj: link(func(l *Link) { l.Spec.SuccessThreshold = -2 }), want: []string{"spec.successThreshold"}},
		"link degradedLatency negative":  {obj: link(func(l *Link) { l.Spec.DegradedLatency = dur(-time.Millisecond) }), want: []string{"spec.degradedLatency"}},
		"link http bad": {obj: link(func(l *Link) {
			l.Spec.TCP = nil
			l.Spec.HTTP = &HTTPProbe{URL: "localhost/api", ExpectBody: "A2RTR.*(up", ExpectStatus: []int{600}}
		}), want: []string{"spec.http.expectBody", "spec.http.expectStatus[0]", "spec.http.url"}},

		// Module.
		"module exec missing":        {obj: mod(func(m *Module) { m.Spec.Exec = nil }), want: []string{"spec.exec"}},
		"module type":                {obj: mod(func(m *Module) { m.Spec.Type = "daemon" }), want: []string{"spec.type"}},
		"module restart":             {obj: mod(func(m *Module) { m.Spec.Restart = "sometimes" }), want: []string{"spec.restart"}},
		"module restartSec zero":     {obj: mod(func(m *Module) { m.Spec.RestartSec = dur(0) }), want: []string{"spec.restartSec"}},
		"module state":               {obj: mod(func(m *Module) { m.Spec.State = "running" }), want: []string{"spec.state"}},
		"module scope":               {obj: mod(func(m *Module) { m.Spec.Scope = "global" }), want: []string{"spec.scope"}},
		"module unitName no suffix":  {obj: mod(func(m *Module) { m.Spec.UnitName = "sensor-reader" }), want: []string{"spec.unitName"}},
		"module unitName timer":      {obj: mod(func(m *Module) { m.Spec.UnitName = "sensor-reader.timer" }), want: []string{"spec.unitName"}},
		"module unitName with slash": {obj: mod(func(m *Module) { m.Spec.UnitName = "../evil.service" }), want: []string{"spec.unitName"}},
		"module oneshot always":      {obj: mod(func(m *Module) { m.Spec.Type, m.Spec.Restart = "oneshot", "always" }), want: []string{"spec.restart"}},
		"module unitName template":   {obj: mod(func(m *Module) { m.Spec.UnitName = "sensor@.service" }), want: []string{"spec.unitName"}},
		"module exec relative path":  {obj: mod(func(m *Module) { m.Spec.Exec = []string{"venv/bin/python"} }), want: []string{"spec.exec[0]"}},
		"module exec with $":         {obj: mod(func(m *Module) { m.Spec.Exec = []string{"/opt/$X/run"} }), want: []string{"spec.exec[0]"}},
		"module environment name":    {obj: mod(func(m *Module) { m.Spec.Environment = map[string]string{"1X": "y"} }), want: []string{"spec.environment[1X]"}},
		"module description escape":  {obj: mod(func(m *Module) { m.Spec.Description = `ends in \` }), want: []string{"spec.description"}},
		"module after":               {obj: mod(func(m *Module) { m.Spec.After = []string{"net work"} }), want: []string{"spec.after[0]"}},
		"module workingDirectory":    {obj: mod(func(m *Module) { m.Spec.WorkingDirectory = "sensor" }), want: []string{"spec.workingDirectory"}},
		"module environment key":     {obj: mod(func(m *Module) { m.Spec.Environment = map[string]string{"": "x"} }), want: []string{"spec.environment[]"}},
		"module extra section": {obj: mod(func(m *Module) {
			m.Spec.Extra = map[string]map[string]DirectiveValue{"Timer": {"OnCalendar": {"daily"}}}
		}), want: []string{"spec.extra[Timer]"}},
		"module extra directive with newline": {obj: mod(func(m *Module) {
			m.Spec.Extra = map[string]map[string]DirectiveValue{"Service": {"ExecStartPre": {"/bin/true\nExecStart=/bin/evil"}}}
		}), want: []string{"spec.extra[Service][ExecStartPre]"}},
		"module extra Install.Alias takes over other units": {obj: mod(func(m *Module) {
			m.Spec.Extra = map[string]map[string]DirectiveValue{"Install": {"Alias": {"dnsmasq.service"}, "Also": {"x.service"}, "DefaultInstance": {"a"}}}
		}), want: []string{"spec.extra[Install][Alias]", "spec.extra[Install][Also]", "spec.extra[Install][DefaultInstance]"}},
		"module extra directive name": {obj: mod(func(m *Module) {
			m.Spec.Extra = map[string]map[string]DirectiveValue{"Unit": {"Bad Name": {"x"}}}
		}), want: []string{"spec.extra[Unit][Bad Name]"}},

		// PiNode.
		"pinode mac":                {obj: pi(func(n *PiNode) { n.Spec.MAC = "dc:a6:32:01:02" }), want: []string{"spec.mac"}},
		"pinode mac EUI-64":         {obj: pi(func(n *PiNode) { n.Spec.MAC = "dc:a6:32:01:02:03:04:05" }), want: []string{"spec.mac"}},
		"pinode mac missing":        {obj: pi(func(n *PiNode) { n.Spec.MAC = "" }), want: []string{"spec.mac"}},
		"pinode ip":                 {obj: pi(func(n *PiNode) { n.Spec.IP = "172.16.7.300" }), want: []string{"spec.ip"}},
		"pinode ip v6":              {obj: pi(func(n *PiNode) { n.Spec.IP = "fe80::1" }), want: []string{"spec.ip"}},
		"pinode switch address":     {obj: pi(func(n *PiNode) { n.Spec.Switch.Address = "" }), want: []string{"spec.switch.address"}},
		"pinode switch port":        {obj: pi(func(n *PiNode) { n.Spec.Switch.Port = 0 }), want: []string{"spec.switch.port"}},
		"pinode switch two auths":   {obj: pi(func(n *PiNode) { n.Spec.Switch.CommunityFile = "/etc/community" }), want: []string{"spec.switch"}},
		"pinode communityFile path": {obj: pi(func(n *PiNode) { n.Spec.Switch.Community = ""; n.Spec.Switch.CommunityFile = "c" }), want: []string{"spec.switch.communityFile"}},
		"pinode v3 without user": {obj: pi(func(n *PiNode) {
			n.Spec.Switch.Community = ""
			n.Spec.Switch.V3 = &SNMPv3{AuthProtocol: "MD4", PrivProtocol: "AES"}
		}), want: []string{"spec.switch.v3.authProtocol", "spec.switch.v3.user"}},
		"pinode image url":          {obj: pi(func(n *PiNode) { n.Spec.Image.URL = "ftp://x/img" }), want: []string{"spec.image.url"}},
		"pinode image sha256":       {obj: pi(func(n *PiNode) { n.Spec.Image.SHA256 = "abc" }), want: []string{"spec.image.sha256"}},
		"pinode installGeneration":  {obj: pi(func(n *PiNode) { n.Spec.InstallGeneration = ptr[int64](-1) }), want: []string{"spec.installGeneration"}},
		"pinode power":              {obj: pi(func(n *PiNode) { n.Spec.Power = "on" }), want: []string{"spec.power"}},
		"pinode without image ok":   {obj: pi(func(n *PiNode) { n.Spec.Image = nil })},
		"pinode everything missing": {obj: pi(func(n *PiNode) { n.Spec = PiNodeSpec{} }), want: []string{"spec.ip", "spec.mac", "spec.switch.address", "spec.switch.port"}},

		// AlertRoute.
		"route no receivers":   {obj: route(func(a *AlertRoute) { a.Spec.Receivers = nil }), want: []string{"spec.receivers"}},
		"route empty receiver": {obj: route(func(a *AlertRoute) { a.Spec.Receivers = []Receiver{{}} }), want: []string{"spec.receivers[0]"}},
		"route receiver with two targets": {obj: route(func(a *AlertRoute) {
			a.Spec.Receivers[1].Log = &LogReceiver{}
		}), want: []string{"spec.receivers[1]"}},
		"route email to invalid": {obj: route(func(a *AlertRoute) {
			a.Spec.Receivers[0].Email.To = []string{"not an address"}
		}), want: []string{"spec.receivers[0].email.to[0]"}},
		"route email to missing": {obj: route(func(a *AlertRoute) { a.Spec.Receivers[0].Email.To = nil }), want: []string{"spec.receivers[0].email.to"}},
		"route email from and smarthost": {obj: route(func(a *AlertRoute) {
			a.Spec.Receivers[0].Email.From = "alerts"
			a.Spec.Receivers[0].Email.Smarthost = "smtp.example.net"
		}), want: []string{"spec.receivers[0].email.from", "spec.receivers[0].email.smarthost"}},
		"route email passwordFile relative": {obj: route(func(a *AlertRoute) {
			a.Spec.Receivers[0].Email.PasswordFile = "smtp-password"
		}), want: []string{"spec.receivers[0].email.passwordFile"}},
		"route webhook url":      {obj: route(func(a *AlertRoute) { a.Spec.Receivers[1].Webhook.URL = "127.0.0.1:9000/hook" }), want: []string{"spec.receivers[1].webhook.url"}},
		"route alertmanager url": {obj: route(func(a *AlertRoute) { a.Spec.Receivers[2].Alertmanager.URL = "" }), want: []string{"spec.receivers[2].alertmanager.url"}},
		"route exec command":     {obj: route(func(a *AlertRoute) { a.Spec.Receivers[3].Exec.Command = nil }), want: []string{"spec.receivers[3].exec.command"}},
		"route match kind":       {obj: route(func(a *AlertRoute) { a.Spec.Match.Kinds = []string{"Link", "Pod"} }), want: []string{"spec.match.kinds[1]"}},
		"route match name glob":  {obj: route(func(a *AlertRoute) { a.Spec.Match.Names = []string{"pydecnet[", "ok"} }), want: []string{"spec.match.names[0]"}},
		"route match severity":   {obj: route(func(a *AlertRoute) { a.Spec.Match.Severity = "error" }), want: []string{"spec.match.severity"}},
		"route groupWait zero":   {obj: route(func(a *AlertRoute) { a.Spec.GroupWait = dur(0) }), want: []string{"spec.groupWait"}},
		"route repeatInterval negative": {obj: route(func(a *AlertRoute) {
			a.Spec.RepeatInterval = dur(-time.Hour)
		}), want: []string{"spec.repeatInterval"}},

		// Several problems at once are all reported.
		"several problems": {obj: proc(func(p *Process) {
			p.Name = "Bad_Name"
			p.Spec.Command = nil
			p.Spec.RestartPolicy = "Sometimes"
		}), want: []string{"metadata.name", "spec.command", "spec.restartPolicy"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.obj.Default()
			errs := tc.obj.Validate()
			var got []string
			seen := map[string]bool{}
			for _, e := range errs {
				if e.Detail == "" && e.Type.String() == "" {
					t.Errorf("error without detail or type: %v", e)
				}
				if !seen[e.Field] {
					seen[e.Field] = true
					got = append(got, e.Field)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("field paths mismatch (-want +got):\n%s\nerrors: %v", diff, errs)
			}
		})
	}
}

func TestLookupKind(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string // "" = not found
	}{
		"kind":              {"Process", KindProcess},
		"singular":          {"process", KindProcess},
		"plural":            {"processes", KindProcess},
		"short":             {"proc", KindProcess},
		"upper case":        {"PROCESS", KindProcess},
		"mixed plural":      {"Processes", KindProcess},
		"link":              {"link", KindLink},
		"links":             {"LINKS", KindLink},
		"module short":      {"mod", KindModule},
		"modules":           {"modules", KindModule},
		"pinode":            {"PiNode", KindPiNode},
		"pinode lower":      {"pinode", KindPiNode},
		"pinodes":           {"pinodes", KindPiNode},
		"pi":                {"pi", KindPiNode},
		"pi upper":          {"PI", KindPiNode},
		"alertroute":        {"AlertRoute", KindAlertRoute},
		"alertroutes":       {"alertroutes", KindAlertRoute},
		"ar":                {"ar", KindAlertRoute},
		"ar mixed":          {"Ar", KindAlertRoute},
		"unknown":           {"pod", ""},
		"empty":             {"", ""},
		"prefix only":       {"proces", ""},
		"with space":        {" process", ""},
		"with group suffix": {"process.reconciled.dev", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ki, ok := LookupKind(tc.in)
			if ok != (tc.want != "") {
				t.Fatalf("LookupKind(%q) ok = %v, want %v", tc.in, ok, tc.want != "")
			}
			if ki.Kind != tc.want {
				t.Errorf("LookupKind(%q) = %q, want %q", tc.in, ki.Kind, tc.want)
			}
			if ok {
				obj := ki.New()
				if got := obj.GetTypeMeta().Kind; got != tc.want {
					t.Errorf("New() kind = %q, want %q", got, tc.want)
				}
				if got := obj.GetTypeMeta().APIVersion; got != APIVersion {
					t.Errorf("New() apiVersion = %q, want %q", got, APIVersion)
				}
			}
		})
	}
}

func TestKindNames(t *testing.T) {
	want := []string{"AlertRoute", "Check", "Host", "Link", "Module", "PiNode", "Process"}
	if diff := cmp.Diff(want, KindNames()); diff != "" {
		t.Errorf("KindNames() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSignalName(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    int
		wantErr bool
	}{
		"full":     {in: "SIGTERM", want: 15},
		"short":    {in: "TERM", want: 15},
		"lower":    {in: "sigkill", want: 9},
		"number":   {in: "1", want: 1},
		"zero":     {in: "0", wantErr: true},
		"too big":  {in: "65", wantErr: true},
		"negative": {in: "-9", wantErr: true},
		"unknown":  {in: "SIGFOO", wantErr: true},
		"empty":    {in: "", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSignalName(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseSignalName(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && int(got) != tc.want {
				t.Errorf("ParseSignalName(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestDirectiveValueUnmarshal(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    DirectiveValue
		wantErr bool
	}{
		"string":  {in: `"200M"`, want: DirectiveValue{"200M"}},
		"number":  {in: `30`, want: DirectiveValue{"30"}},
		"float":   {in: `1.5`, want: DirectiveValue{"1.5"}},
		"bool":    {in: `true`, want: DirectiveValue{"yes"}},
		"false":   {in: `false`, want: DirectiveValue{"no"}},
		"list":    {in: `["/bin/a", 2, false]`, want: DirectiveValue{"/bin/a", "2", "no"}},
		"empty":   {in: `[]`, want: DirectiveValue{}},
		"mapping": {in: `{"a": 1}`, wantErr: true},
		"null":    {in: `null`, want: DirectiveValue{}},
		"nested":  {in: `[["a"]]`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var d DirectiveValue
			err := d.UnmarshalJSON([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("UnmarshalJSON(%s) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr {
				if diff := cmp.Diff(tc.want, d); diff != "" {
					t.Errorf("UnmarshalJSON(%s) mismatch (-want +got):\n%s", tc.in, diff)
				}
			}
		})
	}
}

func TestSetCondition(t *testing.T) {
	var s CommonStatus
	t0 := metav1.NewTime(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	if !s.SetCondition(Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: "Running", LastTransitionTime: t0}) {
		t.Fatal("first SetCondition reported no change")
	}
	if s.SetCondition(Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: "Running", LastTransitionTime: metav1.NewTime(t0.Add(time.Hour))}) {
		t.Error("SetCondition with the same status and reason reported a change")
	}
	if got := s.Condition(ConditionReady).LastTransitionTime; !got.Equal(&t0) {
		t.Errorf("lastTransitionTime moved without a status change: %v", got)
	}
	if !s.SetCondition(Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: "BackOff", LastTransitionTime: metav1.NewTime(t0.Add(time.Hour))}) {
		t.Error("status change reported no change")
	}
	if s.Condition("Other") != nil {
		t.Error("Condition of an unknown type is not nil")
	}
}

func TestEmailUsernameNeedsPasswordFile(t *testing.T) {
	a := &AlertRoute{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindAlertRoute}, ObjectMeta: ObjectMeta{Name: "r"},
		Spec: AlertRouteSpec{Receivers: []Receiver{{Email: &EmailReceiver{Smarthost: "127.0.0.1:25", Username: "u", From: "a@b.c", To: []string{"d@e.f"}}}}}}
	a.Default()
	errs := a.Validate()
	if len(errs) != 1 || errs[0].Field != "spec.receivers[0].email.passwordFile" {
		t.Fatalf("errors %v, want spec.receivers[0].email.passwordFile required", errs)
	}
}

func TestSocketDefaults(t *testing.T) {
	p := exampleProcess()
	p.Spec.Sockets = []Socket{{Listen: "tcp://:80"}, {Listen: "udp://:53"}, {Listen: "unix:///run/a.sock", Name: "api"}}
	p.Default()
	want := []Socket{{Name: p.Name, Listen: "tcp://:80", Backlog: DefaultSocketBacklog},
		{Name: p.Name, Listen: "udp://:53"}, {Name: "api", Listen: "unix:///run/a.sock", Backlog: DefaultSocketBacklog, Mode: "0666"}}
	if diff := cmp.Diff(want, p.Spec.Sockets); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// FuzzParseSocketListen: whatever the input, the parser either refuses it
// or returns a network and an address that bind as the same listen value.
func FuzzParseSocketListen(f *testing.F) {
	for _, s := range []string{"tcp://:8080", "tcp://127.0.0.1:0", "udp://[::1]:53", "unix:///run/a.sock", "unix://x",
		"tcp://[fe80::1%eth0]:80", "tcp://host:http", "tcp://:", "unix:///", "http://a:1", "tcp://a:1/path", "tcp://a b:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		network, addr, err := ParseSocketListen(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		switch network {
		case "tcp", "udp":
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatalf("%q: address %q does not split: %v", s, addr, err)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				t.Fatalf("%q: port %q", s, port)
			}
			if strings.ContainsAny(host, "/?# ") {
				t.Fatalf("%q: host %q", s, host)
			}
		case "unix":
			if !strings.HasPrefix(addr, "/") || len(addr) > 107 || strings.ContainsRune(addr, 0) {
				t.Fatalf("%q: path %q", s, addr)
			}
		default:
			t.Fatalf("%q: network %q", s, network)
		}
		if n2, a2, err := ParseSocketListen(network + "://" + addr); err != nil || n2 != network || a2 != addr {
			t.Fatalf("%q: %s://%s parses as %q %q %v", s, network, addr, n2, a2, err)
		}
	})
}
