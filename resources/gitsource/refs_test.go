// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

// refsServer serves an info/refs file with Last-Modified (304 on
// If-Modified-Since) and counts the full answers.
type refsServer struct {
	mu      sync.Mutex
	body    string
	mod     time.Time
	status  int
	answers atomic.Int32
}

func (rs *refsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	body, mod, status := rs.body, rs.mod, rs.status
	rs.mu.Unlock()
	if r.URL.Path != "/repo.git/info/refs" || status != 0 {
		http.Error(w, "no", max(status, http.StatusNotFound))
		return
	}
	if r.Header.Get("Authorization") != "Basic tok" {
		http.Error(w, "auth", http.StatusUnauthorized)
		return
	}
	if since, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !mod.After(since) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	rs.answers.Add(1)
	w.Header().Set("Last-Modified", mod.Format(http.TimeFormat))
	w.Write([]byte(body))
}

func (rs *refsServer) set(body string) {
	rs.mu.Lock()
	rs.body, rs.mod = body, rs.mod.Add(time.Minute)
	rs.mu.Unlock()
}

// The cheap check answers "unchanged" from 304s, asks for a real
// ls-remote every fullCheckEvery polls and when the file moves, and turns
// itself off when the file is missing or keeps disagreeing with the
// remote.
func TestRefsCheck(t *testing.T) {
	rs := &refsServer{mod: time.Now().Add(-time.Hour).Truncate(time.Second)}
	rs.set(sha1 + "\trefs/heads/main\n" + sha2 + "\trefs/tags/v1\n")
	srv := httptest.NewServer(rs)
	defer srv.Close()
	ctx := context.Background()
	if newRefsCheck("git://h/r", "") != nil || newRefsCheck("/srv/r.git", "") != nil {
		t.Error("a cheap check for a remote that is not http(s)")
	}
	c := newRefsCheck(srv.URL+"/repo.git/", "Basic tok")
	if c.unchanged(ctx, "main", sha1) {
		t.Fatal("unchanged before the file was ever read")
	}
	if why := c.confirm(ctx, "main", sha1); why != "" {
		t.Fatalf("confirm: %s", why)
	}
	answers := rs.answers.Load()
	cheap := 0
	for c.unchanged(ctx, "main", sha1) {
		cheap++
	}
	if cheap != fullCheckEvery-1 || rs.answers.Load() != answers {
		t.Errorf("%d cheap polls with %d full answers, want %d polls answered 304", cheap, rs.answers.Load()-answers, fullCheckEvery-1)
	}
	c.confirm(ctx, "main", sha1)
	rs.set(sha2 + "\trefs/heads/main\n")
	if c.unchanged(ctx, "main", sha1) {
		t.Error("a push was not seen")
	}
	// A stale file: off after two disagreeing ls-remotes.
	if why := c.confirm(ctx, "main", sha1); why != "" {
		t.Errorf("off after one disagreement: %s", why)
	}
	if why := c.confirm(ctx, "main", sha1); !strings.Contains(why, "update-server-info") {
		t.Errorf("a stale file kept on: %q", why)
	}
	if c.unchanged(ctx, "main", sha2) {
		t.Error("a check that is off answered")
	}

	// Missing (404) or not an info/refs file: off at the first confirm.
	for _, body := range []string{"", "<html>hello</html>\n"} {
		rs2 := &refsServer{}
		if body == "" {
			rs2.status = http.StatusNotFound
		} else {
			rs2.set(body)
		}
		srv2 := httptest.NewServer(rs2)
		c2 := newRefsCheck(srv2.URL+"/repo.git", "Basic tok")
		if why := c2.confirm(ctx, "main", sha1); why == "" {
			t.Errorf("body %q: the check stayed on", body)
		}
		srv2.Close()
	}
}

func FuzzParseRefs(f *testing.F) {
	f.Add(sha1 + "\trefs/heads/main\n" + sha2 + "\trefs/tags/v1\n")
	f.Add("")
	f.Add("<html>\n")
	f.Add(sha1 + "\trefs/heads/\n")
	f.Fuzz(func(t *testing.T, s string) {
		heads, err := parseRefs(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, sha := range heads {
			if len(sha) != 40 && len(sha) != 64 {
				t.Fatalf("a head %q", sha)
			}
		}
	})
}

// A file changed within the last two seconds is asked for again without
// conditions: Last-Modified counts whole seconds.
func TestRefsCheckFreshFile(t *testing.T) {
	rs := &refsServer{mod: time.Now().Add(-time.Minute).Truncate(time.Second)}
	rs.set(sha1 + "\trefs/heads/main\n") // modified a moment ago
	srv := httptest.NewServer(rs)
	defer srv.Close()
	c := newRefsCheck(srv.URL+"/repo.git", "Basic tok")
	ctx := context.Background()
	c.confirm(ctx, "main", sha1)
	before := rs.answers.Load()
	if !c.unchanged(ctx, "main", sha1) || rs.answers.Load() != before+1 {
		t.Errorf("a fresh file was asked for with conditions (answers %d -> %d)", before, rs.answers.Load())
	}
}
