// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package mqttbridge connects the daemon to an MQTT broker (MQTT v5, with
// eclipse/paho.golang's autopaho): it takes commands from MQTT and
// publishes the status of every resource, as the module manager of the
// seed story did.
//
// # Topics
//
// <prefix> is the topicPrefix of the daemon's mqtt settings (default
// "reconciled"); <kind> in the topics the bridge publishes is the kind's
// singular lower-case name (process, link, module, pinode, alertroute).
//
//	<prefix>/command/<kind>/<name>/<action>   subscribed, QoS 1
//	    kind: any spelling reconcilectl accepts (module, modules, mod, ...)
//	    action: start | stop | restart, and for modules create | remove
//	    start and stop set spec.state to Running or Stopped (kinds without
//	    it, such as Process, refuse them); restart restarts the program
//	    now; remove deletes the module. The payload is ignored,
//	    except for create: the Module resource (JSON or YAML), or just its
//	    spec (a JSON object without "kind" or "apiVersion", e.g.
//	    {"exec": ["/usr/bin/python3", "main.py"], "workingDirectory": "/opt/m"}),
//	    which is wrapped into a Module named after the topic. create
//	    replaces a module that exists. See ParseCommand.
//	<prefix>/command/module/all/restart         subscribed, QoS 1
//	    restarts every Module at once (the seed's restart_configs), each
//	    as its own restart would, and waits for the outcomes (a unit
//	    active again, or why not). Optional payload: {"selector":
//	    "site=ark", "timeout": "30s"} (label selector; wait, default 1m).
//	    One answer, a Reply whose "report" lists "restarted", "failed"
//	    (name and error) and "skipped" (state: Stopped), goes to the
//	    response topic or, without one, to <prefix>/reply (QoS 1, not
//	    retained). It runs beside the commands after it; one at a time.
//	<prefix>/error                             published, QoS 1, not retained
//	    {"topic": "...", "error": "...", "time": "RFC 3339",
//	     "kind": "Module", "name": "...", "action": "start"}  (the last three
//	    when the topic could be read) for every command that is refused: a
//	    topic of the wrong shape, an unknown kind, name or action, a bad
//	    payload, an unknown resource, or one the daemon refuses (validation,
//	    a resource defined in a file other than <dir>/api/...). A refused
//	    command changes nothing.
//	<prefix>/status/<kind>/<name>              published, QoS 1, retained
//	    a Status as JSON: {"kind": "Module", "name": "...", "phase": "Active",
//	    "ready": "True", "reason": "...", "message": "...", "generation": 3,
//	    "observedGeneration": 3, "time": "RFC 3339"}, each time the phase,
//	    the Ready condition or a generation changes. An empty retained
//	    message clears it when the resource is deleted. On every (re)connect
//	    the status of every resource is published again, and retained
//	    statuses of resources that no longer exist are cleared.
//	<prefix>/bridge/state                      published, QoS 1, retained
//	    "online" while the bridge is connected; "offline" when it stops,
//	    and, as its will, when its connection is lost.
//
// A command that carries an MQTT v5 response topic also gets a reply there
// (with its correlation data): {"topic": "...", "kind": "...", "name":
// "...", "action": "...", "result": "created|configured|unchanged|deleted|
// accepted", "error": "...", "time": "..."}, with either result or error.
//
// Commands are executed one at a time, in the order they arrive. Retained
// command messages are never executed (the subscription asks the broker not
// to send them), so a command acts once. The session is not persisted: a
// command published while the bridge is disconnected is lost.
//
// Anyone who may publish on <prefix>/command/# can create modules, which
// run programs: restrict it with the broker's ACL. Each daemon needs a
// prefix of its own: the bridge clears retained statuses under its prefix
// that name resources it does not have.
//
// The bridge runs three goroutines whatever the number of resources: one
// reads the store's watch, one executes commands, one publishes. What waits
// to be published is bounded: the newest status per resource, and at most
// 100 error reports and replies.
package mqttbridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/go-logr/logr"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"

	"github.com/reconciled/reconciled/internal/backoff"
)

// DefaultTopicPrefix is the topic prefix when Options.TopicPrefix is empty.
const DefaultTopicPrefix = "reconciled"

// Options configures a Bridge. The first five are the daemon's mqtt
// settings.
type Options struct {
	// Broker is the broker's URL: mqtt://host:port (also tcp://), or
	// mqtts://, tls:// or ssl:// for TLS; a bare host:port or host means
	// mqtt://. The port defaults to 1883, or 8883 with TLS.
	Broker string
	// Username and the password read from PasswordFile (trailing newline
	// trimmed) authenticate the bridge; both are optional.
	Username     string
	PasswordFile string
	// TopicPrefix starts every topic (default "reconciled"). It must not
	// hold wildcards nor start or end with "/".
	TopicPrefix string
	// TLS connects with TLS, verified against the system's roots, whatever
	// the URL's scheme.
	TLS bool
	// ClientID is the MQTT client identifier (default
	// reconciled-<hostname>-<pid>).
	ClientID string
	// MaxReconnectDelay is the longest wait between two connection
	// attempts (default 30s); the first attempt after a loss is immediate,
	// then the wait doubles from 250ms.
	MaxReconnectDelay time.Duration
	// Log receives the bridge's events: connection changes at V(0) and
	// commands at V(0), the MQTT client's errors at V(1).
	Log logr.Logger
}

// Actions is what the bridge does with commands. Kind is the CamelCase
// kind; errors are reported on <prefix>/error with their text, and should
// leave everything unchanged. WriterActions implements it.
type Actions interface {
	// Apply creates or replaces kind/name with the document body (create);
	// see apply.Writer.Apply.
	Apply(kind, name string, body []byte) (apply.Result, error)
	// Delete removes kind/name (remove); see apply.Writer.Delete.
	Delete(kind, name string) (apply.Result, error)
	// SetState sets spec.state to Running (start) or Stopped (stop).
	SetState(kind, name, state string) error
	// Restart restarts the resource's program now (restart).
	Restart(kind, name string) error
	// RestartAll restarts every resource of kind that selector matches,
	// and waits up to timeout for each outcome (<kind>/all/restart).
	RestartAll(kind, selector string, timeout time.Duration) (v1alpha1.RestartReport, error)
}

// StatusSource is what the bridge reads statuses from; *resources.Store
// implements it.
type StatusSource interface {
	// List returns the API views of every resource of a kind.
	List(kind string) []v1alpha1.Object
	// Watch streams changes of a kind ("" for all) until stop is called;
	// the channel is closed when the watcher falls behind, and the bridge
	// then lists and watches again.
	Watch(kind string) (events <-chan resources.Event, stop func())
	// Known reports whether kind/name exists (valid or not). Commands
	// other than create for unknown resources are refused.
	Known(kind, name string) bool
}

// Bridge is the MQTT bridge. Create it with New and run it with Start.
type Bridge struct {
	opts     Options
	prefix   string
	server   *url.URL
	tls      *tls.Config
	password []byte
	log      logr.Logger
	actions  Actions
	source   StatusSource
	now      func() time.Time

	cmds    chan inbound
	out     *outbox
	running atomic.Bool
	failing atomic.Bool // connection attempts are failing (log only the first at V(0))
	// restartingAll is set while a <kind>/all/restart waits for outcomes.
	restartingAll atomic.Bool
}

// inbound is a command as received.
type inbound struct {
	topic         string
	payload       []byte
	responseTopic string
	correlation   []byte
}

// maxInbound bounds the commands waiting to be executed; beyond it a
// command is refused with an error report.
const maxInbound = 16

// publishTimeout bounds one publication or subscription.
const publishTimeout = 10 * time.Second

// New checks the options, reads the password file and returns a bridge
// that acts through actions and publishes the statuses of source. It does
// not connect: Run does.
func New(opts Options, actions Actions, source StatusSource) (*Bridge, error) {
	if actions == nil || source == nil {
		return nil, errors.New("mqtt: the bridge needs actions and a status source")
	}
	b := &Bridge{opts: opts, log: opts.Log, actions: actions, source: source, now: time.Now,
		cmds: make(chan inbound, maxInbound), out: newOutbox()}
	b.prefix = opts.TopicPrefix
	if b.prefix == "" {
		b.prefix = DefaultTopicPrefix
	}
	if strings.ContainsAny(b.prefix, "+#\x00") || strings.HasPrefix(b.prefix, "/") || strings.HasSuffix(b.prefix, "/") {
		return nil, fmt.Errorf("mqtt: topicPrefix %q must not hold + # or NUL, nor start or end with /", b.prefix)
	}
	u, useTLS, err := brokerURL(opts.Broker, opts.TLS)
	if err != nil {
		return nil, err
	}
	b.server = u
	if useTLS {
		b.tls = &tls.Config{MinVersion: tls.VersionTLS12} // system roots; server name from the URL
	}
	if opts.PasswordFile != "" {
		p, err := os.ReadFile(opts.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: passwordFile: %w", err)
		}
		b.password = []byte(strings.TrimRight(string(p), "\r\n"))
	}
	if b.opts.ClientID == "" {
		host, _ := os.Hostname()
		b.opts.ClientID = fmt.Sprintf("reconciled-%s-%d", host, os.Getpid())
	}
	if b.opts.MaxReconnectDelay <= 0 {
		b.opts.MaxReconnectDelay = 30 * time.Second
	}
	return b, nil
}

// brokerURL parses the broker setting; see Options.Broker.
func brokerURL(s string, forceTLS bool) (*url.URL, bool, error) {
	if s == "" {
		return nil, false, errors.New("mqtt: broker is required")
	}
	if !strings.Contains(s, "://") {
		s = "mqtt://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, false, fmt.Errorf("mqtt: broker: %w", err)
	}
	useTLS := forceTLS
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		if forceTLS {
			u.Scheme = "tls"
		}
	case "mqtts", "tls", "ssl":
		useTLS = true
	default:
		return nil, false, fmt.Errorf("mqtt: broker %q: unsupported scheme %q (want mqtt, tcp, mqtts, tls or ssl)", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, false, fmt.Errorf("mqtt: broker %q has no host", s)
	}
	if u.Port() == "" {
		port := "1883"
		if useTLS {
			port = "8883"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, useTLS, nil
}

// TopicPrefix returns the topic prefix in use.
func (b *Bridge) TopicPrefix() string { return b.prefix }

// Start connects to the broker and bridges until ctx is done, reconnecting
// by itself whenever the connection is lost; a broker that cannot be
// reached is retried forever. On return it has published "offline" (when
// connected) and disconnected. Start may be called once; it returns an
// error only when called again.
func (b *Bridge) Start(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("mqtt: the bridge is already running")
	}
	events, stopWatch := b.relist()
	connCtx, cancelConn := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConn()
	cm, err := autopaho.NewConnection(connCtx, b.clientConfig())
	if err != nil {
		stopWatch()
		return fmt.Errorf("mqtt: %w", err)
	}
	b.log.Info("MQTT bridge started", "broker", b.server.Redacted(), "prefix", b.prefix, "clientID", b.opts.ClientID)
	b.loops(ctx, cm, events, stopWatch).Wait()

	// Say goodbye while the connection is (perhaps) still up.
	if up, _, _ := b.out.state(); up {
		pctx, cancel := context.WithTimeout(connCtx, 2*time.Second)
		_, err := cm.Publish(pctx, &paho.Publish{Topic: b.prefix + "/bridge/state", QoS: 1, Retain: true, Payload: []byte("offline")})
		cancel()
		if err != nil {
			b.log.V(1).Info("cannot publish the bridge's offline state", "error", err.Error())
		}
	}
	dctx, cancel := context.WithTimeout(connCtx, 5*time.Second)
	defer cancel()
	if err := cm.Disconnect(dctx); err != nil {
		b.log.V(1).Info("MQTT disconnect did not finish", "error", err.Error())
	}
	b.log.Info("MQTT bridge stopped")
	return nil
}

// clientConfig is the autopaho configuration.
func (b *Bridge) clientConfig() autopaho.ClientConfig {
	errLog := pahoLogger{b.log.WithName("paho").V(1)}
	return autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{b.server},
		TlsCfg:                        b.tls,
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         0,
		ReconnectBackoff:              b.backoff,
		ConnectTimeout:                10 * time.Second,
		ConnectUsername:               b.opts.Username,
		ConnectPassword:               b.password,
		WillMessage:                   &paho.WillMessage{Topic: b.prefix + "/bridge/state", Payload: []byte("offline"), QoS: 1, Retain: true},
		OnConnectionUp: func(_ *autopaho.ConnectionManager, _ *paho.Connack) {
			b.failing.Store(false)
			b.log.Info("connected to the MQTT broker", "broker", b.server.Redacted())
			b.out.connected()
		},
		OnConnectionDown: func() bool {
			b.out.disconnected()
			b.log.Info("lost the connection to the MQTT broker; reconnecting", "broker", b.server.Redacted())
			return true
		},
		OnConnectError: func(err error) {
			log := b.log
			if b.failing.Swap(true) {
				log = log.V(1)
			}
			log.Info("cannot connect to the MQTT broker; retrying", "broker", b.server.Redacted(), "error", err.Error())
		},
		Errors:     errLog,
		PahoErrors: errLog,
		ClientConfig: paho.ClientConfig{
			ClientID: b.opts.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) { b.receive(pr.Packet); return true, nil },
			},
		},
	}
}

// backoff is the wait before connection attempt n of a reconnection:
// none, then 250ms doubling up to MaxReconnectDelay, jittered by ±20%.
func (b *Bridge) backoff(n int) time.Duration {
	return backoff.Policy{Initial: 250 * time.Millisecond, Max: b.opts.MaxReconnectDelay, Jitter: 0.2}.Delay(n)
}

// client is the part of autopaho.ConnectionManager the bridge uses.
type client interface {
	Publish(ctx context.Context, p *paho.Publish) (*paho.PublishResponse, error)
	Subscribe(ctx context.Context, s *paho.Subscribe) (*paho.Suback, error)
}

// loops starts the bridge's three goroutines; the WaitGroup is done when
// ctx is done and they have returned.
func (b *Bridge) loops(ctx context.Context, c client, events <-chan resources.Event, stopWatch func()) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() { b.statusLoop(ctx, events, stopWatch) })
	wg.Go(func() { b.commandLoop(ctx) })
	wg.Go(func() { b.publishLoop(ctx, c) })
	return &wg
}

// pahoLogger passes the MQTT client's log lines to a logr.Logger.
type pahoLogger struct{ log logr.Logger }

// Println implements paho's log.Logger.
func (l pahoLogger) Println(v ...any) {
	l.log.Info("mqtt client", "msg", strings.TrimSpace(fmt.Sprintln(v...)))
}

// Printf implements paho's log.Logger.
func (l pahoLogger) Printf(format string, v ...any) {
	l.log.Info("mqtt client", "msg", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
