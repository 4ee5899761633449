// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Command reconciled is the daemon: it watches a directory of resource
// files and keeps reality in line with them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	flag "github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/alerting"
	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/controllers/alertroute"
	"github.com/reconciled/reconciled/controllers/alertsource"
	"github.com/reconciled/reconciled/controllers/link"
	"github.com/reconciled/reconciled/controllers/module"
	"github.com/reconciled/reconciled/controllers/pinode"
	"github.com/reconciled/reconciled/controllers/process"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/internal/supervise"
	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/mqttbridge"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Liveness limits of /healthz: a reconcile or a file load running longer
// is stuck.
const (
	stuckReconcile = 3 * time.Minute
	stuckLoad      = time.Minute
)

type flags struct {
	dir, stateDir, config, listen, socket, status, logFormat, tokenFile, cpuProfile, memProfile string
	systemdRoot, systemdUnitDir, socketGroup                                                    string
	verbosity                                                                                   int
	apiHosts                                                                                    []string
	stopOnExit, showVersion, allowInsecureFiles                                                 bool
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/reconciled"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "reconciled")
	}
	return "reconciled-state"
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("reconciled", flag.ContinueOnError)
	fs.StringVar(&f.dir, "dir", "./resources", "resource files to watch (recursively)")
	fs.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "logs, outbox, adoption records, sidecar status")
	fs.StringVar(&f.config, "config", "", "daemon settings file (netboot, mqtt, logs)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9470", "HTTP address for the API, /metrics, /healthz, /readyz and the status page (\"\" to disable)")
	fs.StringVar(&f.socket, "socket", "", "unix-socket API for reconcilectl (default <state-dir>/reconciled.sock)")
	fs.StringVar(&f.socketGroup, "socket-group", "", "group that owns the unix socket (mode 0660), so its members may use reconcilectl (default: the daemon's group)")
	fs.StringVar(&f.status, "status", "inline", "where status is written: inline, sidecar or none")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVarP(&f.verbosity, "v", "v", 0, "log verbosity (0 lifecycle, 1 decisions, 5 queue traces)")
	fs.BoolVar(&f.stopOnExit, "stop-on-exit", false, "stop supervised programs when the daemon exits (default: leave them running, to be adopted)")
	fs.StringVar(&f.tokenFile, "api-token-file", "", "file holding the bearer token that allows writes over TCP")
	fs.StringArrayVar(&f.apiHosts, "api-host", nil, "a Host name the API answers to, besides localhost, IP addresses and the hostname (repeatable; other names are refused against DNS rebinding)")
	fs.StringVar(&f.systemdRoot, "systemd-root", "/", "root of the systemd instance Modules go to: its system bus, unit folder and journal are found below it (/proc/PID/root for a systemd in other namespaces)")
	fs.StringVar(&f.systemdUnitDir, "systemd-unit-dir", "", "folder for system-scope unit files (default <systemd-root>/etc/systemd/system)")
	fs.BoolVar(&f.allowInsecureFiles, "allow-insecure-files", false, "read resource files that belong to other users or are writable by group or others (whoever may write a resource file may run programs as the daemon's user)")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the daemon exits (for performance work)")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a heap profile to this file when the daemon exits (for performance work)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if f.socket == "" {
		f.socket = filepath.Join(f.stateDir, "reconciled.sock")
	}
	if !fs.Changed("dir") {
		if err := checkDefaultDir(f.dir); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// checkDefaultDir refuses the default --dir when it holds Go source: run
// from the reconciled checkout, ./resources is the store's package, and
// reading it as resource folder would be a surprise.
func checkDefaultDir(dir string) error {
	gofiles, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(gofiles) > 0 {
		return fmt.Errorf("%s holds Go source (%s), not resource files: this looks like the reconciled source tree; pass --dir FOLDER (make run uses examples/quickstart)", dir, filepath.Base(gofiles[0]))
	}
	return nil
}

func newLogger(format string, verbosity int) (logr.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.Level(-verbosity), ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		// logr's V(n) is slog level -n: print it as "V1", not "DEBUG+3".
		if lvl, ok := a.Value.Any().(slog.Level); ok && a.Key == slog.LevelKey && lvl < slog.LevelInfo {
			a.Value = slog.StringValue(fmt.Sprintf("V%d", -int(lvl)))
		}
		return a
	}}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return logr.Logger{}, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return logr.FromSlogHandler(h), nil
}

// defaultGCPercent is the daemon's GOGC unless the environment sets one:
// bursts (10,000 programs starting) peak about 30 % lower in RSS than at
// Go's 100, at no measurable cost in time (hack/bench cold).
const defaultGCPercent = 70

func main() {
	// A supervised program with sockets passes through here first, to
	// get LISTEN_PID; it never returns then.
	supervise.RunListenShim()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	f, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconciled:", err)
		os.Exit(2)
	}
	if f.showVersion {
		fmt.Println("reconciled", version)
		return
	}
	log, err := newLogger(f.logFormat, f.verbosity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reconciled:", err)
		os.Exit(2)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(pf)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "reconciled: --cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if f.memProfile != "" {
		defer func() {
			if pf, err := os.Create(f.memProfile); err == nil {
				pprof.WriteHeapProfile(pf)
				pf.Close()
			}
		}()
	}
	if err := run(f, log); err != nil {
		log.Error(err, "reconciled failed")
		daemon.SdNotify(false, "STATUS=failed: "+err.Error())
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(f *flags, log logr.Logger) error {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	socketGID := -1
	if f.socketGroup != "" {
		if socketGID, err = lookupGroup(f.socketGroup); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(f.stateDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// Nothing the daemon inherited (a caller's pipe, say) may leak into
	// supervised programs and be held open by them.
	if err := supervise.MarkInheritedCloseOnExec(); err != nil {
		log.Error(err, "cannot mark inherited descriptors close-on-exec")
	}
	token := ""
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return fmt.Errorf("api token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}

	evStore, err := events.NewStore(events.Options{Path: filepath.Join(f.stateDir, "events.json"), Source: "reconciled",
		OnError: func(err error) { log.Error(err, "event store") }})
	if err != nil {
		return err
	}
	defer evStore.Close()
	store, err := resources.NewStore(resources.Options{Dir: f.dir, StateDir: f.stateDir, Status: resources.StatusMode(f.status), Log: log.WithName("resources"),
		Events: evStore.ForSource("resources"), AllowInsecureFiles: f.allowInsecureFiles})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	start := time.Now()
	if err := store.Load(); err != nil {
		return err
	}
	reg.MustRegister(newStoreCollector(store))

	engine := reconcile.NewEngine(reconcile.Options{Log: log.WithName("controller"), Registerer: reg})
	var logsMax int64
	if cfg.Logs != nil {
		logsMax = cfg.Logs.MaxBytes
	}
	procs, err := process.NewReconciler(process.Options{Store: store, StateDir: f.stateDir, Log: log.WithName("process"),
		Registerer: reg, LogMaxBytes: logsMax, Events: evStore.ForSource("process-controller")})
	if err != nil {
		return err
	}
	adopted, gone := procs.Adopt(log)
	if err := procs.SetupWithEngine(engine); err != nil {
		return err
	}
	host, _ := os.Hostname()
	routes := alertroute.NewReconciler(store, nil, log.WithName("alertroute"))
	alerts, err := alerting.New(alerting.Options{StateDir: filepath.Join(f.stateDir, "alerts"), Hostname: host, Log: log.WithName("alerts"),
		Registerer: reg, OnRouteStatus: routes.StatusChanged})
	if err != nil {
		return err
	}
	routes.SetManager(alerts)
	if err := routes.SetupWithEngine(engine); err != nil {
		return err
	}
	// Routes deleted while the daemon was down lose their pending
	// deliveries; not while a file does not parse (the route may be in it).
	routes.SyncAll(context.Background())
	if store.Settled() {
		alerts.DropUnknownRoutes()
	} else {
		log.Info("keeping the outbox of routes not found: a resource file does not parse")
	}
	if err := alertsource.NewSource(store, alerts, log.WithName("alerts")).SetupWithEngine(engine); err != nil {
		return err
	}
	links := link.NewReconciler(link.Options{Store: store, Events: evStore.ForSource("link-controller"),
		Log: log.WithName("link"), Registerer: reg})
	if err := links.SetupWithEngine(engine); err != nil {
		return err
	}
	modules, err := newModuleReconciler(f, store, reg, evStore, log)
	if err != nil {
		return err
	}
	if err := modules.SetupWithEngine(engine); err != nil {
		return err
	}
	var nb *Netboot
	var nbSettings *pinode.NetbootSettings
	if cfg.Netboot != nil {
		if nb, err = cfg.Netboot.check(); err != nil {
			return err
		}
		nbSettings = &pinode.NetbootSettings{ServerIP: nb.ServerIP, Subnet: nb.Subnet,
			PowerOffTime: nb.PowerOffTime, BootTimeout: nb.BootTimeout, InstallTimeout: nb.InstallTimeout}
	}
	pis, err := pinode.NewReconciler(pinode.Options{Store: store, StateDir: f.stateDir, Log: log.WithName("pinode"),
		Events: evStore.ForSource("pinode-controller"), Registerer: reg, Power: snmpPower{}, Netboot: nbSettings})
	if err != nil {
		return err
	}
	if err := pis.SetupWithEngine(engine); err != nil {
		return err
	}
	var netboot *netbootServers
	if nb != nil {
		if netboot, err = startNetboot(nb, filepath.Join(f.stateDir, "netboot"), pis, log.WithName("netboot")); err != nil {
			return err
		}
	}
	log.Info("resources loaded", "dir", store.Dir(), "took", time.Since(start).Round(time.Millisecond).String(), "adopted", adopted, "exitedWhileDown", gone)

	// One writer for the API and the MQTT bridge: it serializes their edits.
	writer := apply.New(store)
	bridge, err := newMQTTBridge(cfg.MQTT, writer, store, procs, modules, log)
	if err != nil {
		return err
	}
	api := apiserver.New(apiserver.Options{Store: store, Processes: procs, Modules: modules, PiNodes: pis, Gatherer: reg, Log: log.WithName("api"), Token: token, Version: version,
		AllowedHosts: f.apiHosts, Health: func() error {
			// Liveness: every worker returns in time. Reconciles are bounded
			// by their own timeouts (systemd calls: 1 minute), file loads
			// by MaxFileSize.
			return errors.Join(engine.Stuck(stuckReconcile), store.Stuck(stuckLoad))
		},
		Events: evStore, Alerts: alerts, Writer: writer, Live: func(kind, name string) (any, bool) {
			if kind == v1alpha1.KindLink {
				return links.Live(name)
			}
			return nil, false
		}})
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	listeners, ownSocket, err := openListeners(f, socketGID, log)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	engineCtx, stopEngine := context.WithCancel(context.Background())
	storeCtx, stopStore := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); engine.Start(engineCtx) }()
	storeDone := make(chan struct{})
	go func() {
		defer close(storeDone)
		if err := store.Run(storeCtx); err != nil {
			log.Error(err, "resource watch stopped")
			cancel()
		}
	}()
	go procs.Run(ctx)
	linksDone := make(chan struct{})
	go func() { links.Start(engineCtx); close(linksDone) }()
	alertsDone := make(chan struct{})
	go func() { alerts.Run(engineCtx); close(alertsDone) }()
	modulesDone := make(chan struct{})
	go func() { modules.Run(engineCtx); close(modulesDone) }()
	netbootDone := make(chan struct{})
	go func() {
		defer close(netbootDone)
		if netboot != nil {
			netboot.run(engineCtx)
		}
	}()
	bridgeDone := make(chan struct{})
	go func() {
		defer close(bridgeDone)
		if bridge != nil {
			if err := bridge.Run(ctx); err != nil {
				log.Error(err, "MQTT bridge stopped")
			}
		}
	}()
	for _, l := range listeners {
		l := l
		go func() {
			if err := api.Serve(ctx, l.Listener, l.trusted); err != nil {
				log.Error(err, "API listener stopped", "addr", l.Addr().String())
			}
		}()
	}
	api.SetReady(true)
	for _, l := range listeners {
		log.Info("serving API", "addr", l.Addr().String(), "unix", l.trusted)
	}
	daemon.SdNotify(false, daemon.SdNotifyReady+"\n"+statusLine(store))
	go notifyLoop(ctx, store)

	<-ctx.Done()
	log.Info("shutting down", "stopPrograms", f.stopOnExit)
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	stopEngine()
	wg.Wait()
	<-linksDone
	<-alertsDone
	<-modulesDone
	<-bridgeDone
	<-netbootDone
	alerts.Close()
	modules.Close()
	pis.Close()
	if f.stopOnExit {
		procs.StopAll(log)
	}
	stopStore()
	<-storeDone
	procs.Close()
	if ownSocket {
		os.Remove(f.socket) // not one systemd handed over: that file is systemd's
	}
	return nil
}

type listener struct {
	net.Listener
	trusted bool
}

// openListeners opens the TCP listener (or takes a socket-activated one)
// and the unix socket (or takes it from systemd when it hands over one at
// the --socket path). ownSocket reports that the daemon created the unix
// socket file and must remove it at exit. A socket the daemon creates gets
// mode 0660 and, when socketGID >= 0, that group.
func openListeners(f *flags, socketGID int, log logr.Logger) (out []listener, ownSocket bool, err error) {
	activated, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	socketHandedOver := false
	for _, l := range activated {
		if l == nil {
			continue
		}
		_, isUnix := l.(*net.UnixListener)
		if isUnix && f.socket != "" && filepath.Clean(l.Addr().String()) == filepath.Clean(f.socket) {
			socketHandedOver = true
		}
		out = append(out, listener{l, isUnix})
		log.Info("using socket-activated listener", "addr", l.Addr().String())
	}
	if len(activated) == 0 && f.listen != "" {
		l, err := net.Listen("tcp", f.listen)
		if err != nil {
			return nil, false, fmt.Errorf("--listen: %w", err)
		}
		out = append(out, listener{l, false})
	}
	if f.socket != "" && !socketHandedOver {
		if err := os.MkdirAll(filepath.Dir(f.socket), 0o750); err != nil {
			return nil, false, err
		}
		if c, err := net.Dial("unix", f.socket); err == nil {
			c.Close()
			return nil, false, fmt.Errorf("--socket %s: another reconciled is serving it", f.socket)
		}
		os.Remove(f.socket)
		l, err := net.Listen("unix", f.socket)
		if err != nil {
			return nil, false, fmt.Errorf("--socket: %w", err)
		}
		if err := os.Chmod(f.socket, 0o660); err != nil {
			l.Close()
			return nil, false, fmt.Errorf("--socket: %w", err)
		}
		if socketGID >= 0 {
			if err := os.Chown(f.socket, -1, socketGID); err != nil {
				l.Close()
				return nil, false, fmt.Errorf("--socket-group %s: %w", f.socketGroup, err)
			}
		}
		out = append(out, listener{l, true})
		ownSocket = true
	}
	return out, ownSocket, nil
}

// lookupGroup resolves --socket-group (a group name or a numeric gid).
func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			g, err = user.LookupGroupId(name)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("--socket-group %q: unknown group: %w", name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("--socket-group %q: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}

// statusLine is the STATUS= text systemctl status shows.
func statusLine(store *resources.Store) string {
	counts, invalid := store.Counts()
	perKind := map[string]int{}
	for k, n := range counts {
		perKind[k.Kind] += n
	}
	var parts []string
	for _, k := range v1alpha1.Kinds {
		if n := perKind[k.Kind]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k.Plural))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no resources")
	}
	s := "STATUS=" + strings.Join(parts, ", ")
	if invalid > 0 {
		s += fmt.Sprintf(", %d invalid", invalid)
	}
	return s
}

// notifyLoop feeds systemd's watchdog (when WatchdogSec= is set) and keeps
// STATUS= current.
func notifyLoop(ctx context.Context, store *resources.Store) {
	interval := 10 * time.Second
	wd, _ := daemon.SdWatchdogEnabled(false)
	if wd > 0 {
		interval = min(interval, wd/2)
	} else if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			msg := statusLine(store)
			if wd > 0 {
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
			if msg != last {
				daemon.SdNotify(false, msg)
				last = msg
			}
		}
	}
}

// newModuleReconciler connects the Module controller to the system manager
// (--systemd-root) and, when the daemon has a session bus, to the user's.
func newModuleReconciler(f *flags, store *resources.Store, reg prometheus.Registerer, evStore *events.Store, log logr.Logger) (*module.Reconciler, error) {
	managers := map[string]module.Systemd{}
	sys, err := systemd.New(systemd.Options{Scope: systemd.ScopeSystem, Root: f.systemdRoot, UnitDir: f.systemdUnitDir, Log: log.WithName("systemd")})
	if err != nil {
		return nil, err
	}
	managers[systemd.ScopeSystem] = sys
	if user, err := systemd.New(systemd.Options{Scope: systemd.ScopeUser, Log: log.WithName("systemd-user")}); err == nil {
		managers[systemd.ScopeUser] = user
	} else {
		log.V(1).Info("user-scope Modules are not available", "reason", err.Error())
	}
	return module.NewReconciler(module.Options{Store: store, StateDir: f.stateDir, Log: log.WithName("module"),
		Systemd: managers, Registerer: reg, Events: evStore.ForSource("module-controller")})
}

// newMQTTBridge builds the MQTT bridge of the mqtt: settings; nil without
// them.
func newMQTTBridge(c *MQTTConfig, writer *apply.Writer, store *resources.Store, procs *process.Reconciler, modules *module.Reconciler, log logr.Logger) (*mqttbridge.Bridge, error) {
	if c == nil {
		return nil, nil
	}
	restart := func(kind, name string) error {
		switch kind {
		case v1alpha1.KindProcess:
			return procs.RequestRestart(name)
		case v1alpha1.KindModule:
			return modules.RequestRestart(name)
		}
		return fmt.Errorf("restart of a %s: %w", kind, mqttbridge.ErrUnsupported)
	}
	restartAll := func(kind, selector string, timeout time.Duration) (v1alpha1.RestartReport, error) {
		if kind != v1alpha1.KindModule {
			return v1alpha1.RestartReport{}, fmt.Errorf("restart of every %s: %w (modules only)", strings.ToLower(kind), mqttbridge.ErrUnsupported)
		}
		sel, err := labels.Parse(selector)
		if err != nil {
			return v1alpha1.RestartReport{}, err
		}
		return modules.RestartAll(context.Background(), sel, timeout), nil
	}
	b, err := mqttbridge.New(mqttbridge.Options{Broker: c.Broker, Username: c.Username, PasswordFile: c.PasswordFile,
		TopicPrefix: c.TopicPrefix, TLS: c.TLS, Log: log.WithName("mqtt")},
		mqttbridge.WriterActions{Writer: writer, RestartFunc: restart, RestartAllFunc: restartAll}, store)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return b, nil
}
