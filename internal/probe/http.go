// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// maxRedirects is how many redirects an HTTP probe follows.
const maxRedirects = 10

// probeHTTP GETs the URL on a fresh connection and checks status and body.
// Latency is the time to the response headers.
func (p *Prober) probeHTTP(ctx context.Context, h *v1alpha1.HTTPProbe, start time.Time) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return Result{Reason: ReasonError, Message: fmt.Sprintf("invalid url: %v", err)}
	}
	req.Header.Set("User-Agent", "reconciled-link-probe")
	var re *regexp.Regexp
	if h.ExpectBody != "" {
		if re, err = p.regexp(h.ExpectBody); err != nil {
			return Result{Reason: ReasonError, Message: err.Error()}
		}
	}
	client := &http.Client{
		Transport: p.transport(h.UnixSocket),
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	latency := time.Since(start)
	if err != nil {
		return failure(err, start)
	}
	defer func() { _ = resp.Body.Close() }()

	if !statusOK(resp.StatusCode, h.ExpectStatus) {
		want := "2xx or 3xx"
		if len(h.ExpectStatus) > 0 {
			want = fmt.Sprint(h.ExpectStatus)
		}
		return Result{Latency: latency, Reason: ReasonUnexpectedStatus,
			Message: fmt.Sprintf("unexpected status %s (want %s)", resp.Status, want)}
	}
	if re != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return failure(fmt.Errorf("read body: %w", err), start)
		}
		if !re.Match(body) {
			return Result{Latency: latency, Reason: ReasonUnexpectedBody,
				Message: fmt.Sprintf("body does not match %s: %s", strconv.Quote(h.ExpectBody), snippet(body))}
		}
	}
	return Result{OK: true, Latency: latency, Message: resp.Status}
}

// statusOK reports whether code is expected; no expectation means 2xx/3xx.
func statusOK(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(expect, code)
}

// snippet quotes the start of a body for a message.
func snippet(body []byte) string {
	const n = 200
	if len(body) > n {
		return strconv.Quote(string(body[:n])) + "..."
	}
	return strconv.Quote(string(body))
}

// transport returns the cached transport for a unix socket path ("" for
// plain TCP). Keep-alives are off: every probe opens a fresh connection.
func (p *Prober) transport(socket string) *http.Transport {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.transports[socket]; ok {
		return t
	}
	d := p.dialer()
	t := &http.Transport{
		Proxy:                  nil, // probes measure the link itself
		DialContext:            d.DialContext,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	if socket != "" {
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		}
	}
	if p.transports == nil {
		p.transports = make(map[string]*http.Transport)
	}
	p.transports[socket] = t
	return t
}
