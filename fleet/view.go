// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/events"
	"github.com/reconciled/reconciled/resources"
)

// SummaryPath is where each daemon serves its Summary (below the API's
// base path).
const SummaryPath = "/apis/reconciled.dev/v1alpha1/summary"

// Summary is what one host tells the fleet view about itself: its
// sources (the applied commit), counts per kind and phase, its unhealthy
// resources and its recent events.
type Summary struct {
	Host      string                   `json:"host"`
	Version   string                   `json:"version,omitempty"`
	Sources   []resources.SourceStatus `json:"sources"`
	Counts    []KindCount              `json:"counts"`
	Unhealthy []Resource               `json:"unhealthy"`
	// Problems counts the input problems (invalid files).
	Problems int            `json:"problems"`
	Events   []events.Event `json:"events"`
}

// KindCount is the number of resources of a kind per phase.
type KindCount struct {
	Kind      string         `json:"kind"`
	Plural    string         `json:"plural"`
	Phases    map[string]int `json:"phases"`
	Total     int            `json:"total"`
	Unhealthy int            `json:"unhealthy"`
}

// Resource is one unhealthy resource of a Summary.
type Resource struct {
	Kind    string `json:"kind"`
	Plural  string `json:"plural"`
	Name    string `json:"name"`
	Phase   string `json:"phase"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Options configures a View.
type Options struct {
	// Hosts lists the fleet's Host resources.
	Hosts func() []*v1alpha1.Host
	// Self is this host's name: with Local and LocalList, what the view
	// shows of it is read in the process, not over HTTP.
	Self string
	// Local is this host's summary.
	Local func() *Summary
	// LocalList lists a kind (by plural) on this host.
	LocalList func(plural, selector string) ([]json.RawMessage, error)
	// Token is the fleet read token sent to every host (Bearer).
	Token string
	// Timeout bounds one host's answer (default 2 s); a page never waits
	// longer than it for the slowest host.
	Timeout time.Duration
	// Concurrency bounds the requests in flight (default 32).
	Concurrency int
	// CacheTTL is how long an answer (or a failure) is reused (default 5 s).
	CacheTTL time.Duration
	// Transport makes the requests (default: a keep-alive transport of
	// its own).
	Transport http.RoundTripper
}

// View reads the fleet's hosts. It is safe for concurrent use.
type View struct {
	o      Options
	client *http.Client
	sem    chan struct{}

	mu    sync.Mutex
	cache map[string]*fetch
}

// fetch is one request to one host, shared by everyone who asks for it
// while it runs and for CacheTTL after.
type fetch struct {
	done chan struct{}
	at   time.Time
	body []byte
	err  error
}

// NewView returns a View.
func NewView(o Options) *View {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.Transport == nil {
		o.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
			ResponseHeaderTimeout: o.Timeout, TLSHandshakeTimeout: o.Timeout}
	}
	return &View{o: o, client: &http.Client{Transport: o.Transport, Timeout: o.Timeout}, sem: make(chan struct{}, o.Concurrency), cache: map[string]*fetch{}}
}

// isSelf reports whether h is this host, read in the process.
func (v *View) isSelf(h *v1alpha1.Host) bool {
	return h.Name == v.o.Self && v.o.Local != nil && v.o.LocalList != nil
}

// HostView is one host on the fleet page.
type HostView struct {
	Name    string            `json:"name"`
	Address string            `json:"address,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Error says why the host could not be read; "" when it answered.
	Error   string   `json:"error,omitempty"`
	Summary *Summary `json:"summary,omitempty"`
}

// URL is the host's own page ("" without an address).
func (h HostView) URL() string { return baseURL(h.Address) }

// baseURL is the API root of an address (host:port, or a URL).
func baseURL(address string) string {
	if address == "" {
		return ""
	}
	if strings.Contains(address, "://") {
		return strings.TrimSuffix(address, "/")
	}
	return "http://" + address
}

// Hosts reads every host's Summary, sorted by name. It returns after every
// host answered or failed, or after Timeout at most: a host still being
// asked is shown as such (its answer fills the cache for the next call).
func (v *View) Hosts(ctx context.Context) []HostView {
	hosts := v.o.Hosts()
	out := make([]HostView, len(hosts))
	v.each(ctx, hosts, SummaryPath, func(i int, h *v1alpha1.Host, body []byte, err error) {
		hv := HostView{Name: h.Name, Address: h.Spec.Address, Labels: h.Labels}
		switch {
		case v.isSelf(h):
			hv.Summary = v.o.Local()
		case err != nil:
			hv.Error = err.Error()
		default:
			var s Summary
			if err := json.Unmarshal(body, &s); err != nil {
				hv.Error = "bad answer: " + err.Error()
			} else {
				hv.Summary = &s
			}
		}
		out[i] = hv
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HostItems is one host's answer to a list.
type HostItems struct {
	Host  string            `json:"host"`
	Error string            `json:"error,omitempty"`
	Items []json.RawMessage `json:"items"`
}

// List lists a kind (by its plural) on every host, as GET
// .../{plural}?labelSelector=... answers it there.
func (v *View) List(ctx context.Context, plural, selector string) []HostItems {
	path := "/apis/reconciled.dev/v1alpha1/" + url.PathEscape(plural)
	if selector != "" {
		path += "?labelSelector=" + url.QueryEscape(selector)
	}
	hosts := v.o.Hosts()
	out := make([]HostItems, len(hosts))
	v.each(ctx, hosts, path, func(i int, h *v1alpha1.Host, body []byte, err error) {
		hi := HostItems{Host: h.Name, Items: []json.RawMessage{}}
		if v.isSelf(h) {
			if items, lerr := v.o.LocalList(plural, selector); lerr != nil {
				hi.Error = lerr.Error()
			} else {
				hi.Items = items
			}
			out[i] = hi
			return
		}
		if err != nil {
			hi.Error = err.Error()
		} else {
			var l struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(body, &l); err != nil {
				hi.Error = "bad answer: " + err.Error()
			} else if l.Items != nil {
				hi.Items = l.Items
			}
		}
		out[i] = hi
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// errPending is the answer of a host still being asked when the caller's
// wait ended.
var errPending = errors.New("no answer yet (still asking)")

// each asks every host for path and calls fn with each answer, in the
// caller's goroutine; hosts that have not answered within Timeout get
// errPending. The requests are not tied to ctx: an answer that comes late
// is cached for the next caller.
func (v *View) each(ctx context.Context, hosts []*v1alpha1.Host, path string, fn func(i int, h *v1alpha1.Host, body []byte, err error)) {
	fetches := make([]*fetch, len(hosts))
	for i, h := range hosts {
		if v.isSelf(h) {
			continue
		}
		if h.Spec.Address == "" {
			fetches[i] = &fetch{done: closed, err: errors.New("the Host has no spec.address")}
			continue
		}
		fetches[i] = v.get(baseURL(h.Spec.Address) + path)
	}
	deadline := time.NewTimer(v.o.Timeout + 100*time.Millisecond)
	defer deadline.Stop()
	waiting := true
	for i, h := range hosts {
		f := fetches[i]
		if f == nil {
			fn(i, h, nil, nil)
			continue
		}
		if waiting {
			select {
			case <-f.done:
			case <-deadline.C:
				waiting = false
			case <-ctx.Done():
				waiting = false
			}
		}
		select {
		case <-f.done:
			fn(i, h, f.body, f.err)
		default:
			fn(i, h, nil, errPending)
		}
	}
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// get returns the cached or running fetch of u, or starts one.
func (v *View) get(u string) *fetch {
	v.mu.Lock()
	defer v.mu.Unlock()
	if f := v.cache[u]; f != nil {
		select {
		case <-f.done:
			if time.Since(f.at) < v.o.CacheTTL {
				return f
			}
		default:
			return f // running
		}
	}
	f := &fetch{done: make(chan struct{})}
	v.cache[u] = f
	go func() {
		v.sem <- struct{}{}
		f.body, f.err = v.do(u)
		<-v.sem
		f.at = time.Now()
		close(f.done)
	}()
	return f
}

// maxAnswer bounds one host's answer.
const maxAnswer = 8 << 20

// do makes one request.
func (v *View) do(u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), v.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if v.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+v.o.Token)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return body, nil
}
