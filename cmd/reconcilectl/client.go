// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/apiserver"
	"github.com/reconciled/reconciled/resources"
)

// client talks to the daemon over the unix socket or --server.
type client struct {
	base  string
	where string
	http  *http.Client
	token string
}

func defaultSocket() string {
	if os.Geteuid() == 0 {
		return "/var/lib/reconciled/reconciled.sock"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "reconciled", "reconciled.sock")
}

func (g *globals) client() (*client, error) {
	c := &client{}
	if g.tokenFile != "" {
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	if g.server != "" {
		c.base = strings.TrimRight(g.server, "/")
		c.where = c.base
		c.http = &http.Client{}
		return c, nil
	}
	sock := g.socket
	if sock == "" {
		sock = defaultSocket()
	}
	c.base = "http://reconciled"
	c.where = "unix://" + sock
	c.http = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	return c, nil
}

// do sends a request without a body and returns the response for a 2xx
// status; other statuses become errors carrying the daemon's message.
func (c *client) do(ctx context.Context, method, path string) (*http.Response, error) {
	return c.send(ctx, method, path, nil)
}

// send is do with a request body (YAML).
func (c *client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach reconciled at %s: %v (is the daemon running? use --server, --socket, or --dir to read files directly)", c.where, unwrapNet(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var st apiserver.StatusError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &st) == nil && st.Message != "" {
			return nil, fmt.Errorf("%s", st.Message)
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func unwrapNet(err error) error {
	var op *net.OpError
	for e := err; e != nil; {
		if o, ok := e.(*net.OpError); ok {
			op = o
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if op != nil && op.Err != nil {
		return op.Err
	}
	return err
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	return c.doJSON(ctx, http.MethodGet, path, v)
}

// postJSON sends a POST without a body and decodes the JSON answer into v.
func (c *client) postJSON(ctx context.Context, path string, v any) error {
	return c.doJSON(ctx, http.MethodPost, path, v)
}

// doJSON sends a request without a body and decodes the JSON answer into v.
func (c *client) doJSON(ctx context.Context, method, path string, v any) error {
	resp, err := c.do(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// wireList is a list response with raw items, decoded per kind.
type wireList struct {
	Items    []json.RawMessage `json:"items"`
	Problems []problem         `json:"problems"`
}

// problem is an input problem as the API sends it.
type problem = resources.Problem

// decodeObject decodes one API object of a known kind.
func decodeObject(ki v1alpha1.KindInfo, raw []byte) (v1alpha1.Object, error) {
	obj := ki.New()
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ki.Singular, err)
	}
	return obj, nil
}
