// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fullCheckEvery is how many cheap polls may pass between two real
// ls-remotes, which also confirm that the cheap check tells the truth.
const fullCheckEvery = 30

// refsCheck is the cheap poll of an http(s) remote: a conditional GET of
// the repository's info/refs file (git's "dumb" protocol file, kept by
// `git update-server-info`, served as a static file), answered 304 when
// nothing was pushed. A smart-HTTP ls-remote makes the server start git
// twice; a static file costs it almost nothing, which is what makes a
// thousand hosts polling every 30 s cheap for the server.
//
// The file is trusted only while it agrees with the remote: every
// fullCheckEvery polls (and whenever it shows a change) the source does a
// real ls-remote, and a file that disagrees with it, is missing or does
// not parse turns the check off for good (logged); polls are then
// ls-remotes as for any other remote.
type refsCheck struct {
	url    string
	header string // Authorization, from --git-auth-file
	client *http.Client

	mu       sync.Mutex
	disabled string // why the check is off, "" while on
	etag     string
	lastMod  string
	heads    map[string]string // branch -> commit, as the file last said
	polls    int               // cheap polls since the last real ls-remote
	// mismatches counts the real ls-remotes in a row that disagreed with
	// the file: two turn the check off (one may be a push in between).
	mismatches int
	// confirmed is set once the file agreed with a real ls-remote.
	confirmed bool
}

// newRefsCheck returns the cheap check of an http(s) URL, or nil.
func newRefsCheck(url, authHeader string) *refsCheck {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil
	}
	return &refsCheck{url: strings.TrimSuffix(url, "/") + "/info/refs", header: authHeader,
		client: &http.Client{Timeout: 30 * time.Second}}
}

// errRefsUnusable is the error of a file the check cannot use.
var errRefsUnusable = errors.New("info/refs unusable")

// unchanged reports whether a cheap poll shows that branch is still at
// applied: true means no ls-remote is needed. It is false when the check
// is off, when it is time for a real ls-remote, and when the file moved.
func (c *refsCheck) unchanged(ctx context.Context, branch, applied string) bool {
	c.mu.Lock()
	if c.disabled != "" || !c.confirmed || c.polls >= fullCheckEvery-1 || branch == "" || applied == "" {
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	head, err := c.fetch(ctx, true)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return false // an outage or a refusal: the ls-remote says what it is
	}
	c.polls++
	return head[branch] == applied
}

// confirm compares the file with a real ls-remote's answer (branch at
// head) and turns the check off when they disagree; it also restarts the
// count of cheap polls. It returns why the check went off, or "".
func (c *refsCheck) confirm(ctx context.Context, branch, head string) string {
	c.mu.Lock()
	c.polls = 0
	off := c.disabled != ""
	c.mu.Unlock()
	if off {
		return ""
	}
	heads, err := c.fetch(ctx, false)
	why := ""
	switch {
	case errors.Is(err, errRefsUnusable):
		why = err.Error()
	case err != nil:
		return "" // the network; try again at the next real ls-remote
	case heads[branch] != head:
		c.mu.Lock()
		c.mismatches++
		if c.mismatches >= 2 {
			why = fmt.Sprintf("info/refs says %s is at %q, the remote at %s: the server does not run git update-server-info", branch, heads[branch], head)
		}
		c.mu.Unlock()
	default:
		c.mu.Lock()
		c.mismatches, c.confirmed = 0, true
		c.mu.Unlock()
	}
	if why != "" {
		c.mu.Lock()
		c.disabled = why
		c.mu.Unlock()
	}
	return why
}

// fetch reads the file; conditional, a 304 returns the heads it said
// last.
func (c *refsCheck) fetch(ctx context.Context, conditional bool) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	if c.header != "" {
		req.Header.Set("Authorization", c.header)
	}
	c.mu.Lock()
	if conditional && c.heads != nil {
		if c.etag != "" {
			req.Header.Set("If-None-Match", c.etag)
		}
		if c.lastMod != "" {
			req.Header.Set("If-Modified-Since", c.lastMod)
		}
	}
	c.mu.Unlock()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.heads == nil {
			return nil, fmt.Errorf("%w: 304 without a previous answer", errRefsUnusable)
		}
		return c.heads, nil
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("GET %s: %s", c.url, resp.Status) // the server's trouble, maybe passing
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: %s", errRefsUnusable, c.url, resp.Status)
	}
	heads, err := parseRefs(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errRefsUnusable, c.url, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heads, c.etag, c.lastMod = heads, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	// Last-Modified (and the ETags web servers derive from it) count
	// whole seconds: a file changed less than two seconds before this
	// answer could change again within the same second unseen, so it is
	// asked for without conditions next time.
	date, derr := http.ParseTime(resp.Header.Get("Date"))
	mod, merr := http.ParseTime(c.lastMod)
	if derr != nil || merr != nil || date.Sub(mod) < 2*time.Second {
		c.etag, c.lastMod = "", ""
	}
	return heads, nil
}

// parseRefs reads an info/refs file: one "<commit>\t<ref>" per line. It
// returns the branches' commits.
func parseRefs(r io.Reader) (map[string]string, error) {
	heads := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		sha, ref, ok := strings.Cut(line, "\t")
		if !ok || (len(sha) != 40 && len(sha) != 64) || strings.Trim(sha, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("not an info/refs line: %.80q", line)
		}
		if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			heads[branch] = sha
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return heads, nil
}
