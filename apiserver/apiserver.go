// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package apiserver serves the daemon's HTTP API: the Kubernetes-style
// resource API (list, get, watch), actions (restart), program logs,
// /healthz, /readyz, /metrics and the status page. The same handler is
// served on TCP and on the unix socket; writes over TCP need a bearer token.
package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/fleet"
	"github.com/reconciled/reconciled/history"
	"github.com/reconciled/reconciled/internal/logstore"
	"github.com/reconciled/reconciled/resources"
	"github.com/reconciled/reconciled/resources/apply"
)

// BasePath is the prefix of the resource API.
const BasePath = "/apis/" + v1alpha1.APIVersion

// Processes is what the API needs from the Process controller.
type Processes interface {
	RequestRestart(name string) error
	LogPath(name string) (path string, logStore bool)
	// PreviousRun returns the log file and byte range the run before the
	// current one wrote, when known.
	PreviousRun(name string) (path string, from, to int64, ok bool)
}

// Modules is what the API needs from the Module controller.
type Modules interface {
	RequestRestart(name string) error
	// RestartAll restarts every Module sel matches and waits up to
	// timeout for the outcomes.
	RestartAll(ctx context.Context, sel labels.Selector, timeout time.Duration) v1alpha1.RestartReport
	// Journal returns the last n journal lines of the Module's unit.
	Journal(ctx context.Context, name string, n int) ([]string, error)
}

// PiNodes is what the API needs from the PiNode controller.
type PiNodes interface {
	RequestReinstall(name string) error
	// RequestPowerCycle switches the node's port off and on again,
	// without an install.
	RequestPowerCycle(name string) error
	// UnknownNodes lists the undeclared MACs the DHCP server has seen.
	UnknownNodes() any
}

// Options configures a Server.
type Options struct {
	Store     *resources.Store
	Processes Processes
	// Modules, when set, serves module restarts and journals.
	Modules Modules
	// PiNodes, when set, serves reinstalls.
	PiNodes  PiNodes
	Gatherer prometheus.Gatherer
	Log      logr.Logger
	// Token, when set, is the bearer token that allows writes over TCP.
	Token string
	// ReadToken, when set, is the fleet read token: every request over
	// TCP then needs it (or Token) as a bearer token, except /healthz,
	// /readyz and the signed webhooks. Other hosts' fleet views and
	// Prometheus send it.
	ReadToken string
	// Host is this host's name in the fleet.
	Host string
	// Fleet, when set, serves the fleet page (/fleet) and the fleet-wide
	// lists (GET .../fleet/hosts, .../fleet/{plural}).
	Fleet *fleet.View
	// Version is reported by /version.
	Version string
	// Events, when set, serves GET .../events.
	Events *events.Store
	// Alerts, when set, serves POST .../alertroutes/{name}/test.
	Alerts interface{ SendTest(route string) error }
	// Overlay, when set, adds to every object served (API, pages, fleet
	// view) the fast-changing figures its controller keeps out of the
	// store: a Check's last value.
	Overlay func(v1alpha1.Object) v1alpha1.Object
	// Live, when set, returns the fast-changing view of a resource (recent
	// probes of a Link), served as GET .../{plural}/{name}/live.
	Live func(kind, name string) (any, bool)
	// History, when set, serves GET .../{checks,links}/{name}/history?range=R:
	// a Check's values or a Link's latency (seconds) and failures, rolled
	// up over the range (hour, day, week, month, year).
	History func(kind, name, rangeName string) ([]history.Point, error)
	// Writer, when set, serves PUT and DELETE .../{plural}/{name}
	// (reconcilectl apply and delete).
	Writer *apply.Writer
	// Hooks are served as POST /hooks/{name} (the git source's push
	// webhook): they authenticate the sender themselves (an HMAC), so they
	// need no token and answer to any Host name.
	Hooks map[string]http.Handler
	// Sources, when set, lists where resources come from (GET
	// .../sources, reconcilectl get sources).
	Sources func() []resources.SourceStatus
	// Health, when set, is /healthz's liveness check: an error (workers
	// stuck) makes it answer 503 with the error.
	Health func() error
	// AllowedHosts are the Host header names the API answers to besides
	// localhost, IP addresses and the machine's hostname (DNS rebinding:
	// a web page may make a browser send requests to 127.0.0.1 under its
	// own name).
	AllowedHosts []string
	// MaxConnections bounds the open connections of each TCP listener
	// (default 512); the unix socket has its own bound, so a flood over TCP
	// never locks reconcilectl out.
	MaxConnections int
	// ReadHeaderTimeout closes a connection that sends no request header
	// within it (default 10s): half-open and slowloris connections.
	ReadHeaderTimeout time.Duration
}

// Connection bounds and timeouts of the listeners.
const (
	defaultMaxConnections    = 512
	unixMaxConnections       = 128
	defaultReadHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections with no request.
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 64 << 10
)

// Server is the API handler.
type Server struct {
	opts  Options
	ready atomic.Bool
	mux   *http.ServeMux
	hosts map[string]bool // allowed Host names, lower case
}

// New returns the API server; SetReady flips /readyz.
func New(o Options) *Server {
	if o.MaxConnections <= 0 {
		o.MaxConnections = defaultMaxConnections
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	s := &Server{opts: o, mux: http.NewServeMux(), hosts: map[string]bool{"localhost": true}}
	if h, err := os.Hostname(); err == nil {
		s.hosts[strings.ToLower(h)] = true
	}
	for _, h := range o.AllowedHosts {
		s.hosts[strings.ToLower(h)] = true
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.registerKube()
	s.mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, versionInfo(o.Version))
	})
	if o.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	s.mux.HandleFunc("GET "+BasePath, s.discovery)
	s.mux.HandleFunc("GET "+BasePath+"/problems", s.problems)
	s.mux.HandleFunc("GET "+BasePath+"/events", s.events)
	// Live figures include exec probe output: like program logs, they need
	// the unix socket or the token over TCP.
	s.mux.HandleFunc("GET "+BasePath+"/{plural}/{name}/live", s.authorized(s.live))
	s.mux.HandleFunc("GET "+BasePath+"/{plural}", s.list)
	s.mux.HandleFunc("GET "+BasePath+"/{plural}/{name}", s.get)
	s.mux.HandleFunc("PUT "+BasePath+"/{plural}/{name}", s.authorized(s.apply))
	s.mux.HandleFunc("DELETE "+BasePath+"/{plural}/{name}", s.authorized(s.delete))
	s.mux.HandleFunc("POST "+BasePath+"/{plural}", s.authorized(s.create))
	s.mux.HandleFunc("PATCH "+BasePath+"/{plural}/{name}", s.authorized(s.patch))
	var restartProcess, restartModule, reinstall, powerCycle func(string) error
	if o.Processes != nil {
		restartProcess = o.Processes.RequestRestart
	}
	if o.Modules != nil {
		restartModule = o.Modules.RequestRestart
	}
	if o.PiNodes != nil {
		reinstall, powerCycle = o.PiNodes.RequestReinstall, o.PiNodes.RequestPowerCycle
	}
	s.mux.HandleFunc("POST "+BasePath+"/processes/{name}/restart", s.authorized(action("process", "restart", restartProcess)))
	s.mux.HandleFunc("POST "+BasePath+"/alertroutes/{name}/test", s.authorized(s.alertTest))
	s.mux.HandleFunc("POST "+BasePath+"/modules/{name}/restart", s.authorized(action("module", "restart", restartModule)))
	s.mux.HandleFunc("POST "+BasePath+"/modules/restart", s.authorized(s.restartModules))
	s.mux.HandleFunc("GET "+BasePath+"/modules/{name}/log", s.authorized(s.moduleLog))
	s.mux.HandleFunc("POST "+BasePath+"/pinodes/{name}/reinstall", s.authorized(action("pinode", "reinstall", reinstall)))
	// A PiNode's restart is a power cycle (piman's "restart PORT").
	s.mux.HandleFunc("POST "+BasePath+"/pinodes/{name}/restart", s.authorized(action("pinode", "power cycle", powerCycle)))
	s.mux.HandleFunc("GET "+BasePath+"/unknownnodes", s.unknownNodes)
	s.mux.HandleFunc("GET "+BasePath+"/sources", func(w http.ResponseWriter, _ *http.Request) {
		items := []resources.SourceStatus{}
		if o.Sources != nil {
			items = o.Sources()
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "SourceList", "items": items})
	})
	// Program output may hold secrets: like writes, it needs the unix
	// socket or the token over TCP.
	s.mux.HandleFunc("GET "+BasePath+"/processes/{name}/log", s.authorized(s.processLog))
	s.mux.HandleFunc("GET "+BasePath+"/{plural}/{name}/history", s.history)
	s.mux.HandleFunc("GET "+BasePath+"/summary", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Summary()) })
	s.mux.HandleFunc("GET /sd/prometheus", s.prometheusSD)
	if o.Fleet != nil {
		s.mux.HandleFunc("GET /fleet", s.fleetPage)
		s.mux.HandleFunc("GET "+BasePath+"/fleet/hosts", s.fleetHosts)
		s.mux.HandleFunc("GET "+BasePath+"/fleet/{plural}", s.fleetList)
	}
	for name, h := range o.Hooks {
		s.mux.Handle("POST /hooks/"+name, h)
	}
	s.mux.HandleFunc("GET /{$}", s.statusPage)
	s.mux.HandleFunc("GET /ui/{plural}/{name}", s.detailPage)
	return s
}

// SetReady marks the daemon ready (initial load and adoption done).
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r) {
		writeError(w, http.StatusMisdirectedRequest, "MisdirectedRequest", fmt.Sprintf("this daemon does not answer to the host name %q (a web page may be trying DNS rebinding); use localhost or an IP address, or start it with --api-host %s", hostOnly(r.Host), hostOnly(r.Host)))
		return
	}
	if !s.mayRead(r) {
		writeError(w, http.StatusUnauthorized, "Unauthorized", "this daemon needs the fleet read token (or the API token) as a bearer token over TCP")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether a request may be served under its Host
// header: always over the unix socket, for the probes Prometheus and
// load balancers make by any name (/metrics, /healthz, /readyz) and for the
// signed webhooks (/hooks/...); else for
// localhost, IP addresses, the machine's hostname and AllowedHosts.
func (s *Server) hostAllowed(r *http.Request) bool {
	if trusted, _ := r.Context().Value(trustedKey{}).(bool); trusted {
		return true
	}
	switch r.URL.Path {
	case "/metrics", "/healthz", "/readyz":
		return true
	}
	if strings.HasPrefix(r.URL.Path, "/hooks/") {
		return true // signed by the sender, as a git host sends it
	}
	h := strings.ToLower(hostOnly(r.Host))
	if h == "" || net.ParseIP(h) != nil || s.hosts[h] || strings.HasSuffix(h, ".localhost") {
		return true
	}
	return false
}

// hostOnly drops the port (and IPv6 brackets) of a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// healthz is the liveness check: the process answers and, with
// Options.Health, its workers make progress.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Health != nil {
		if err := s.opts.Health(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// Serve serves l until ctx is done. trusted listeners (the unix socket)
// may write without a token. Connections are bounded per listener, and
// a connection that sends no request header within 10 s is closed.
func (s *Server) Serve(ctx context.Context, l net.Listener, trusted bool) error {
	h := http.Handler(s)
	limit := s.opts.MaxConnections
	if trusted {
		limit = unixMaxConnections
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), trustedKey{}, true)))
		})
	}
	l = netutil.LimitListener(l, limit)
	srv := &http.Server{Handler: h, BaseContext: func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: log.New(logWriter{s.opts.Log.V(1)}, "", 0)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type trustedKey struct{}

// logWriter turns the HTTP server's own log lines (accept errors,
// malformed requests) into debug lines of the daemon's log.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("http server", "message", strings.TrimSpace(string(p)))
	return len(p), nil
}

// authorized guards a mutating or sensitive handler: the unix socket, or a
// bearer token over TCP.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.privileged(r) {
			h(w, r)
			return
		}
		if s.opts.Token == "" {
			writeError(w, http.StatusForbidden, "Forbidden", "this request needs the unix socket, or a bearer token over TCP: start reconciled with --api-token-file")
			return
		}
		writeError(w, http.StatusUnauthorized, "Unauthorized", "a valid bearer token is required for this request over TCP")
	}
}

// mayRead reports whether a request may be served at all: with a fleet
// read token, requests over TCP need it (or the API token), except the
// probes and the signed webhooks.
func (s *Server) mayRead(r *http.Request) bool {
	if s.opts.ReadToken == "" || s.privileged(r) {
		return true
	}
	switch {
	case r.URL.Path == "/healthz", r.URL.Path == "/readyz", strings.HasPrefix(r.URL.Path, "/hooks/"):
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.ReadToken)) == 1
}

// privileged reports whether the caller may write and see secrets: it came
// over the unix socket, or holds the bearer token.
func (s *Server) privileged(r *http.Request) bool {
	if trusted, _ := r.Context().Value(trustedKey{}).(bool); trusted {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.opts.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) == 1
}

// view returns obj as the caller may see it: with environment values
// redacted unless the caller is privileged (values often hold passwords;
// like program logs they need the unix socket or the token).
func (s *Server) view(r *http.Request, obj v1alpha1.Object) v1alpha1.Object {
	obj = s.overlay(obj)
	if s.privileged(r) {
		return obj
	}
	return v1alpha1.RedactSecrets(obj)
}

// overlay applies Options.Overlay.
func (s *Server) overlay(obj v1alpha1.Object) v1alpha1.Object {
	if s.opts.Overlay == nil || obj == nil {
		return obj
	}
	return s.opts.Overlay(obj)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready: loading resources", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, apiResources())
}

func (s *Server) problems(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"kind": "ProblemList", "items": nonNil(s.opts.Store.Problems())})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// kindOf resolves the {plural} path segment (any accepted spelling).
func kindOf(w http.ResponseWriter, r *http.Request) (v1alpha1.KindInfo, bool) {
	ki, ok := v1alpha1.LookupKind(r.PathValue("plural"))
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("the server does not have a resource type %q", r.PathValue("plural")))
	}
	return ki, ok
}

// List is the body of a list response.
type List struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ListMeta   `json:"metadata"`
	Items      []v1alpha1.Object `json:"items"`
	// Problems are this kind's input problems that are not attached to a
	// listed resource (a duplicate name, for example).
	Problems []resources.Problem `json:"problems,omitempty"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	ki, ok := kindOf(w, r)
	if !ok {
		return
	}
	match, err := selectorOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	if q := r.URL.Query().Get("watch"); q != "" && q != "0" && q != "false" {
		s.watch(w, r, ki, match)
		return
	}
	all, rv := s.opts.Store.ListVersion(ki.Kind)
	items := []v1alpha1.Object{}
	for _, o := range all {
		if match(o) {
			items = append(items, s.view(r, o))
		}
	}
	var probs []resources.Problem
	for _, p := range s.opts.Store.Problems() {
		if p.Kind == ki.Kind {
			probs = append(probs, p)
		}
	}
	if wantsTable(r) {
		s.writeTable(w, r, ki, items, rv)
		return
	}
	writeJSON(w, http.StatusOK, List{APIVersion: v1alpha1.APIVersion, Kind: ki.Kind + "List", Metadata: metav1.ListMeta{ResourceVersion: rv}, Items: items, Problems: probs})
}

// listItems returns the resources of a kind that sel selects, as view
// shows them.
func (s *Server) listItems(ki v1alpha1.KindInfo, sel labels.Selector, view func(v1alpha1.Object) v1alpha1.Object) []v1alpha1.Object {
	items := []v1alpha1.Object{}
	for _, o := range s.opts.Store.List(ki.Kind) {
		if sel.Matches(labels.Set(o.GetObjectMeta().Labels)) {
			items = append(items, view(o))
		}
	}
	return items
}

// watch streams changes as Kubernetes does: from resourceVersion (what
// changed since, then every change; 410 Gone in an ERROR event for a
// version older than the store remembers), or without one (or with
// sendInitialEvents, a streaming list, which ends its initial events with
// the initial-events-end BOOKMARK) every resource as ADDED first; BOOKMARK
// events with allowWatchBookmarks; Tables of one
// row when the client asks for Tables (kubectl get -w); until the client
// goes, timeoutSeconds pass, or the watcher falls too far behind.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, ki v1alpha1.KindInfo, match func(v1alpha1.Object) bool) {
	q := r.URL.Query()
	events, stop := s.opts.Store.Watch(ki.Kind)
	defer func() { stop() }()
	var first []resources.Event
	var firstRV string                                    // the version the first events bring the client to
	initialEvents := q.Get("sendInitialEvents") == "true" // a streaming list (client-go's WatchList)
	if rv := q.Get("resourceVersion"); rv != "" && rv != "0" && !initialEvents {
		since, now, err := s.opts.Store.Since(ki.Kind, rv)
		firstRV = now
		if errors.Is(err, resources.ErrGone) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"type": "ERROR", "object": StatusError{Kind: "Status", APIVersion: "v1", Status: "Failure",
				Reason: "Expired", Code: http.StatusGone, Message: fmt.Sprintf("too old resource version: %s (%s)", rv, s.opts.Store.Version())}})
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		first = since
	} else {
		all, now := s.opts.Store.ListVersion(ki.Kind)
		firstRV = now
		for _, o := range all {
			first = append(first, resources.Event{Type: resources.Added, Object: o})
		}
	}
	var timeout <-chan time.Time
	if secs, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && secs > 0 {
		timeout = time.After(time.Duration(secs) * time.Second)
	}
	var bookmarks <-chan time.Time
	if q.Get("allowWatchBookmarks") == "true" {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		bookmarks = t.C
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	table, header := wantsTable(r), true
	lastRV := firstRV
	send := func(ev resources.Event) error {
		// lastRV only rises: a list's objects carry their own versions,
		// older than the list's (firstRV).
		if rv := ev.Object.GetObjectMeta().ResourceVersion; rv != "" && newer(ev, lastRV) {
			lastRV = rv
		}
		if !match(ev.Object) {
			return nil
		}
		var obj any = s.view(r, ev.Object)
		if table {
			t, err := s.table(r, ki, []v1alpha1.Object{s.view(r, ev.Object)}, ev.Object.GetObjectMeta().ResourceVersion)
			if err != nil {
				return err
			}
			if !header {
				t.ColumnDefinitions = nil // kubectl prints the header once
			}
			header, obj = false, t
		}
		return enc.Encode(map[string]any{"type": string(ev.Type), "object": obj})
	}
	for _, ev := range first {
		if send(ev) != nil {
			return
		}
	}
	bookmark := func(endOfInitial bool) error {
		// A bookmark must not claim changes still waiting to be sent: the
		// store's version only when none is (every change up to the
		// version read is in the channel by then), else the last sent.
		rv := s.opts.Store.Version()
		if endOfInitial || len(events) > 0 {
			rv = lastRV
		}
		meta := map[string]any{"resourceVersion": rv}
		if endOfInitial {
			meta["annotations"] = map[string]string{"k8s.io/initial-events-end": "true"}
		}
		return enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"kind": ki.Kind, "apiVersion": v1alpha1.APIVersion, "metadata": meta}})
	}
	if initialEvents && bookmark(true) != nil {
		return
	}
	if fl != nil {
		fl.Flush()
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-timeout:
			return
		case <-bookmarks:
			if bookmark(false) != nil {
				return
			}
		case ev, ok := <-events:
			if !ok {
				// The watcher fell behind a burst (more changes than the
				// subscription buffers): catch up from the last version
				// sent, each resource's latest state once, and go on — no
				// relist for the client.
				stop()
				events, stop = s.opts.Store.Watch(ki.Kind)
				since, _, err := s.opts.Store.Since(ki.Kind, lastRV)
				if err != nil {
					return // too old: the client lists and watches again
				}
				for _, ev := range since {
					if send(ev) != nil {
						return
					}
				}
			} else if newer(ev, lastRV) && send(ev) != nil {
				return
			}
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

// newer reports whether a watch event comes after version rv; after a
// catch-up the new subscription may repeat changes the catch-up sent.
func newer(ev resources.Event, rv string) bool {
	a, errA := strconv.ParseUint(ev.Object.GetObjectMeta().ResourceVersion, 10, 64)
	b, errB := strconv.ParseUint(rv, 10, 64)
	return errA != nil || errB != nil || a > b
}

// bookmarkInterval is how often a watch with allowWatchBookmarks gets a
// BOOKMARK.
const bookmarkInterval = 30 * time.Second

// selectorOf compiles the labelSelector and fieldSelector of a list or
// watch; fieldSelector knows metadata.name and status.phase.
func selectorOf(r *http.Request) (func(v1alpha1.Object) bool, error) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		return nil, fmt.Errorf("labelSelector: %w", err)
	}
	fsel, err := fields.ParseSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		return nil, fmt.Errorf("fieldSelector: %w", err)
	}
	for _, req := range fsel.Requirements() {
		if req.Field != "metadata.name" && req.Field != "status.phase" {
			return nil, fmt.Errorf("fieldSelector: field label %q not supported (metadata.name, status.phase)", req.Field)
		}
	}
	return func(o v1alpha1.Object) bool {
		return sel.Matches(labels.Set(o.GetObjectMeta().Labels)) &&
			fsel.Matches(fields.Set{"metadata.name": o.GetObjectMeta().Name, "status.phase": o.GetCommonStatus().Phase})
	}, nil
}

// events lists events, optionally of one kind (?kind=) or object (&name=),
// oldest first like kubectl.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if s.opts.Events == nil {
		writeJSON(w, http.StatusOK, map[string]any{"kind": "EventList", "items": []events.Event{}})
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" {
		ki, ok := v1alpha1.LookupKind(kind)
		if !ok {
			writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown kind %q", kind))
			return
		}
		kind = ki.Kind
	}
	writeJSON(w, http.StatusOK, map[string]any{"kind": "EventList", "items": nonNil(s.opts.Events.List(kind, r.URL.Query().Get("name")))})
}

// live serves the fast-changing view of one resource.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	ki, ok := kindOf(w, r)
	if !ok {
		return
	}
	if s.opts.Live != nil {
		if v, ok := s.opts.Live(ki.Kind, r.PathValue("name")); ok {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no live figures for %s %q", ki.Singular, r.PathValue("name")))
}

// CheckHistory is the answer of GET .../{checks,links}/{name}/history.
type CheckHistory struct {
	Kind   string          `json:"kind"`
	Name   string          `json:"name"`
	Range  string          `json:"range"`
	Step   string          `json:"step"`
	Points []history.Point `json:"points"`
}

// history serves a Check's or a Link's history over ?range= (default
// hour).
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	ki, ok := kindOf(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if ki.Kind != v1alpha1.KindCheck && ki.Kind != v1alpha1.KindLink {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s have no history (checks and links do)", ki.Plural))
		return
	}
	if _, ok := s.opts.Store.Get(ki.Kind, name); !ok || s.opts.History == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", ki.Singular, name))
		return
	}
	rng := r.URL.Query().Get("range")
	if rng == "" {
		rng = "hour"
	}
	hr, ok := history.LookupRange(rng)
	if !ok {
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("range %q: one of %s", rng, strings.Join(history.RangeNames(), ", ")))
		return
	}
	points, err := s.opts.History(ki.Kind, name, rng)
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFound", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, CheckHistory{Kind: "CheckHistory", Name: name, Range: rng, Step: hr.Step.String(), Points: points})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	ki, ok := kindOf(w, r)
	if !ok {
		return
	}
	o, ok := s.opts.Store.View(ki.Kind, r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", ki.Singular, r.PathValue("name")))
		return
	}
	if wantsTable(r) {
		s.writeTable(w, r, ki, []v1alpha1.Object{s.view(r, o)}, o.GetObjectMeta().ResourceVersion)
		return
	}
	writeJSON(w, http.StatusOK, s.view(r, o))
}

// alertTest sends a test notification through every receiver of a route.
func (s *Server) alertTest(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.opts.Store.Get(v1alpha1.KindAlertRoute, name); !ok || s.opts.Alerts == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("alertroute %q not found", name))
		return
	}
	if err := s.opts.Alerts.SendTest(name); err != nil {
		writeError(w, http.StatusConflict, "Conflict", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"kind": "Status", "status": "Success",
		"message": fmt.Sprintf("test notification queued for every receiver of alertroute %q; see its status and events", name)})
}

func (s *Server) processLog(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.opts.Store.View(v1alpha1.KindProcess, name); !ok {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("process %q not found", name))
		return
	}
	path, _ := s.opts.Processes.LogPath(name)
	tail := -1
	if t := r.URL.Query().Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "tail must be a number")
			return
		}
		tail = n
	}
	if p := r.URL.Query().Get("previous"); p != "" && p != "0" && p != "false" {
		path, from, to, ok := s.opts.Processes.PreviousRun(name)
		if !ok {
			writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("the previous run of process %q is not known (it ran once, writes its own files, or its log was rotated or the daemon restarted since)", name))
			return
		}
		b, err := logstore.Range(path, from, to, tail)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if f := r.URL.Query().Get("follow"); f != "" && f != "0" && f != "false" {
		w.WriteHeader(http.StatusOK)
		err := logstore.Follow(r.Context(), path, tail, flushWriter{w})
		if err != nil && !errors.Is(err, context.Canceled) {
			s.opts.Log.V(1).Info("log follow ended", "name", name, "error", err.Error())
		}
		return
	}
	b, err := logstore.Tail(path, tail)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	w.Write(b)
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// StatusError is the body of an error response, after metav1.Status.
type StatusError struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
	Code       int    `json:"code"`
	// Details lists the causes of an Invalid (422) response.
	Details *StatusDetails `json:"details,omitempty"`
}

// StatusDetails names the object of a response and, for Invalid, each
// problem with its field path.
type StatusDetails struct {
	Kind   string        `json:"kind,omitempty"`
	Name   string        `json:"name,omitempty"`
	Causes []StatusCause `json:"causes,omitempty"`
}

// StatusCause is one problem with a submitted resource.
type StatusCause struct {
	// Field is the path of the offending field, like spec.command.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Line is the line within the submitted document.
	Line int `json:"line,omitempty"`
}

func writeError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, StatusError{Kind: "Status", APIVersion: "v1", Status: "Failure", Reason: reason, Message: msg, Code: code})
}
