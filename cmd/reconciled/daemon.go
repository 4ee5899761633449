// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reconciled/reconciled/alerting"
	config "github.com/reconciled/reconciled/apis/config/v1alpha1"
	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/controllers/alertroute"
	"github.com/reconciled/reconciled/controllers/alertsource"
	"github.com/reconciled/reconciled/controllers/check"
	"github.com/reconciled/reconciled/controllers/link"
	"github.com/reconciled/reconciled/controllers/module"
	"github.com/reconciled/reconciled/controllers/pinode"
	"github.com/reconciled/reconciled/controllers/process"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/fleet"
	"github.com/reconciled/reconciled/history"
	"github.com/reconciled/reconciled/internal/runner"
	"github.com/reconciled/reconciled/internal/supervise"
	"github.com/reconciled/reconciled/internal/systemd"
	"github.com/reconciled/reconciled/mqttbridge"
	"github.com/reconciled/reconciled/netboot"
	"github.com/reconciled/reconciled/reconcile"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"
)

// Liveness limits of /healthz: a reconcile or a file load running longer
// is stuck.
const (
	stuckReconcile = 3 * time.Minute
	stuckLoad      = time.Minute
)

// run wires the daemon together and runs it until SIGTERM or SIGINT: the
// store is loaded, the controllers are set up on one engine, and the
// runner starts the store, the controllers and the servers, in that
// order, and stops them in reverse.
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
	token, err := readToken("--api-token-file", f.tokenFile)
	if err != nil {
		return err
	}
	fleetToken, err := readToken("--fleet-token-file", f.fleetTokenFile)
	if err != nil {
		return err
	}
	run := runner.New(log.WithName("runner"))

	evStore, err := events.NewStore(events.Options{Path: filepath.Join(f.stateDir, "events.json"), Source: "reconciled",
		OnError: func(err error) { log.Error(err, "event store") }})
	if err != nil {
		return err
	}
	defer evStore.Close()
	host := f.host
	if !f.hostSet && cfg.Host != "" {
		host = cfg.Host
	}
	settings, err := sourceSettings(f, cfg, host)
	if err != nil {
		return err
	}
	kube, err := newKubeAgent(f, host, f.stateDir, log)
	if err != nil {
		return err
	}
	status := f.status
	if hasGit(settings) || kube != nil {
		// Status never goes into a checkout of the fleet's repository
		// (nor into the checkpoint of a Kubernetes API server's objects).
		if f.statusSet && status != "sidecar" && status != "none" {
			return fmt.Errorf("--status %s: with a git or kube source, status goes to the sidecar (or none)", status)
		}
		if !f.statusSet {
			status = "sidecar"
		}
	}
	sources, err := openSources(settings, kube, f.stateDir, f.allowInsecureFiles, log)
	if err != nil {
		return err
	}
	hooks, err := sources.hooks()
	if err != nil {
		return err
	}
	store, err := resources.NewStore(resources.Options{Dir: sources.dir, Source: sources.multi, Host: host, StateDir: f.stateDir, Status: resources.StatusMode(status), Log: log.WithName("resources"),
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
	reg.MustRegister(newStoreCollector(store), newSourceCollector(sources.status(store)))
	run.Add(runner.Store, "resources", store)

	engine := reconcile.NewEngine(reconcile.Options{Log: log.WithName("controller"), Registerer: reg})
	run.Add(runner.Controllers, "engine", engine)
	procs, err := process.NewReconciler(process.Options{Store: store, StateDir: f.stateDir, Log: log.WithName("process"),
		Registerer: reg, LogMaxBytes: logsMaxBytes(cfg), Events: evStore.ForSource("process-controller")})
	if err != nil {
		return err
	}
	adopted, gone := procs.Adopt(log)
	if err := procs.SetupWithEngine(engine); err != nil {
		return err
	}
	run.Add(runner.Controllers, "process-logs", procs)
	run.AfterStop(runner.Store, procs.Close)
	if f.stopOnExit {
		run.AfterStop(runner.Controllers, func() { procs.StopAll(log) })
	}

	alerts, err := setupAlerts(engine, store, host, f.stateDir, reg, log)
	if err != nil {
		return err
	}
	run.Add(runner.Controllers, "alerts", alerts)
	run.AfterStop(runner.Controllers, func() {
		if err := alerts.Close(); err != nil {
			log.Error(err, "closing the alert state")
		}
	})

	links := link.NewReconciler(link.Options{Store: store, Events: evStore.ForSource("link-controller"),
		Log: log.WithName("link"), Registerer: reg, HistoryDir: filepath.Join(f.stateDir, "history", "links")})
	if err := links.SetupWithEngine(engine); err != nil {
		return err
	}
	run.Add(runner.Controllers, "link-probes", links)

	checks := check.NewReconciler(check.Options{Store: store, Events: evStore.ForSource("check-controller"),
		Log: log.WithName("check"), Registerer: reg, HistoryDir: filepath.Join(f.stateDir, "history", "checks")})
	if err := checks.SetupWithEngine(engine); err != nil {
		return err
	}
	run.Add(runner.Controllers, "checks", checks)

	modules, err := newModuleReconciler(f, store, reg, evStore, log)
	if err != nil {
		return err
	}
	if err := modules.SetupWithEngine(engine); err != nil {
		return err
	}
	run.Add(runner.Controllers, "systemd", modules)
	run.AfterStop(runner.Controllers, modules.Close)

	if kube != nil {
		if err := kube.setup(run, engine, store, evStore, f, host, log); err != nil {
			return err
		}
	}

	pis, netbootServers, err := setupPiNodes(engine, store, cfg.Netboot, f.stateDir, reg, evStore, log)
	if err != nil {
		return err
	}
	run.AfterStop(runner.Controllers, pis.Close)
	if netbootServers != nil {
		run.Add(runner.Servers, "netboot", netbootServers)
	}
	log.Info("resources loaded", "sources", sources.multi.Name(), "took", time.Since(start).Round(time.Millisecond).String(), "adopted", adopted, "exitedWhileDown", gone)

	// One writer for the API and the MQTT bridge: it serializes their edits.
	// Resources from git are changed by commits, not through the daemon.
	var writer *apply.Writer
	if !hasGit(settings) && sources.dir != "" {
		writer = apply.New(store)
	} else if cfg.MQTT != nil {
		return errors.New("mqtt: the MQTT bridge writes resources, which come from git with --git (not supported together yet)")
	}
	if cfg.MQTT != nil {
		bridge, err := newMQTTBridge(cfg.MQTT, writer, store, procs, modules, log)
		if err != nil {
			return err
		}
		run.Add(runner.Servers, "mqtt", bridge)
	}
	var api *apiserver.Server
	fleetView := fleet.NewView(fleet.Options{Self: host, Token: fleetToken,
		Hosts:     func() []*v1alpha1.Host { return fleet.HostsOf(store.List(v1alpha1.KindHost)) },
		Local:     func() *fleet.Summary { return api.Summary() },
		LocalList: func(plural, selector string) ([]json.RawMessage, error) { return api.LocalList(plural, selector) }})
	api = apiserver.New(apiserver.Options{Store: store, Processes: procs, Modules: modules, PiNodes: pis, Gatherer: reg, Log: log.WithName("api"), Token: token, Version: version,
		ReadToken: fleetToken, Host: host, Fleet: fleetView,
		AllowedHosts: f.apiHosts, Health: func() error {
			// Liveness: every worker returns in time. Reconciles are bounded
			// by their own timeouts (systemd calls: 1 minute), file loads
			// by MaxFileSize.
			return errors.Join(engine.Stuck(stuckReconcile), store.Stuck(stuckLoad))
		},
		Events: evStore, Alerts: alerts, Writer: writer, Hooks: hooks, Sources: sources.status(store), Overlay: checks.Overlay, Live: func(kind, name string) (any, bool) {
			switch kind {
			case v1alpha1.KindLink:
				return links.Live(name)
			case v1alpha1.KindCheck:
				return checks.Live(name)
			}
			return nil, false
		}, History: func(kind, name, rangeName string) ([]history.Point, error) {
			if kind == v1alpha1.KindLink {
				return links.History(name, rangeName)
			}
			return checks.History(name, rangeName)
		}})
	listeners, ownSocket, err := openListeners(f, socketGID, log)
	if err != nil {
		return err
	}
	for _, l := range listeners {
		run.Add(runner.Servers, "api "+l.Addr().String(), runner.Func(serve(api, l, log)))
	}
	if ownSocket {
		// Not one systemd handed over: that file is systemd's.
		run.AfterStop(runner.Servers, func() { os.Remove(f.socket) })
	}
	run.Add(runner.Servers, "sd-notify", runner.Func(func(ctx context.Context) error { return notifyLoop(ctx, store) }))

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	context.AfterFunc(ctx, func() {
		log.Info("shutting down", "stopPrograms", f.stopOnExit)
		daemon.SdNotify(false, daemon.SdNotifyStopping)
	})
	return run.Run(ctx, func() {
		api.SetReady(true)
		for _, l := range listeners {
			log.Info("serving API", "addr", l.Addr().String(), "unix", l.trusted)
		}
		daemon.SdNotify(false, daemon.SdNotifyReady+"\n"+statusLine(store))
	})
}

// readToken reads a token file ("" without one); an empty file is an error.
func readToken(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s: %s is empty", flag, path)
	}
	return tok, nil
}

// logsMaxBytes is the logs.maxBytes setting (0: the log store's default).
func logsMaxBytes(cfg *config.Config) int64 {
	if cfg.Logs == nil {
		return 0
	}
	return cfg.Logs.MaxBytes
}

// setupAlerts opens the alert manager (durable groups and outbox), and
// sets up the AlertRoute controller and the alert source on the engine.
func setupAlerts(engine *reconcile.Engine, store *resources.Store, host, stateDir string, reg prometheus.Registerer, log logr.Logger) (*alerting.Manager, error) {
	routes := alertroute.NewReconciler(store, nil, log.WithName("alertroute"))
	alerts, err := alerting.New(alerting.Options{StateDir: filepath.Join(stateDir, "alerts"), Hostname: host, Log: log.WithName("alerts"),
		Registerer: reg, OnRouteStatus: routes.StatusChanged})
	if err != nil {
		return nil, err
	}
	routes.SetManager(alerts)
	if err := routes.SetupWithEngine(engine); err != nil {
		return nil, err
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
		return nil, err
	}
	return alerts, nil
}

// setupPiNodes sets up the PiNode controller and, with netboot: settings,
// the netboot servers, which share its MAC/IP index.
func setupPiNodes(engine *reconcile.Engine, store *resources.Store, nb *config.Netboot, stateDir string, reg prometheus.Registerer, evStore *events.Store, log logr.Logger) (*pinode.Reconciler, *netboot.Servers, error) {
	var values *config.NetbootValues
	var settings *pinode.NetbootSettings
	if nb != nil {
		var err error
		if values, err = nb.Values(); err != nil {
			return nil, nil, err
		}
		settings = &pinode.NetbootSettings{ServerIP: values.ServerIP, Subnet: values.Subnet,
			PowerOffTime: values.PowerOffTime, BootTimeout: values.BootTimeout, InstallTimeout: values.InstallTimeout}
	}
	index := netboot.NewIndex()
	pis, err := pinode.NewReconciler(pinode.Options{Store: store, StateDir: stateDir, Log: log.WithName("pinode"),
		Events: evStore.ForSource("pinode-controller"), Registerer: reg, Power: pinode.SNMPPower{}, Netboot: settings, Index: index})
	if err != nil {
		return nil, nil, err
	}
	if err := pis.SetupWithEngine(engine); err != nil {
		return nil, nil, err
	}
	if values == nil {
		return pis, nil, nil
	}
	servers, err := netboot.NewServers(values, filepath.Join(stateDir, "netboot"), index, pis, log.WithName("netboot"))
	if err != nil {
		return nil, nil, err
	}
	return pis, servers, nil
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

// newMQTTBridge builds the MQTT bridge of the mqtt: settings: edits go
// through the writer, restarts to the controllers of the kinds that have
// them.
func newMQTTBridge(c *config.MQTT, writer *apply.Writer, store *resources.Store, procs *process.Reconciler, modules *module.Reconciler, log logr.Logger) (*mqttbridge.Bridge, error) {
	b, err := mqttbridge.New(mqttbridge.Options{Broker: c.Broker, Username: c.Username, PasswordFile: c.PasswordFile,
		TopicPrefix: c.TopicPrefix, TLS: c.TLS, Log: log.WithName("mqtt")},
		mqttbridge.WriterActions{Writer: writer,
			Restarters:    map[string]func(string) error{v1alpha1.KindProcess: procs.RequestRestart, v1alpha1.KindModule: modules.RequestRestart},
			RestartAllers: map[string]mqttbridge.RestartAllFunc{v1alpha1.KindModule: modules.RestartAll}},
		store)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return b, nil
}
