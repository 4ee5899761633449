// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package handshake serves the install handshake a netbooting Pi's
// installer speaks with the daemon, and the images it installs:
//
//	GET  /netboot/v1/nodes/{mac}/plan      {"action":"install","image":{"url":...,"sha256":...}} or {"action":"boot-local"}
//	POST /netboot/v1/nodes/{mac}/progress  {"phase":"installing|installed|failed","percent":40,"message":"..."}
//	GET  /netboot/v1/nodes/{mac}/image     the node's image (file:// sources), with Range support
//
// Only the declared node's own IP may use its URLs: anything else gets 403,
// so one Pi can neither read another's plan nor report for it.
package handshake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/go-logr/logr"
)

// Actions a plan can hold.
const (
	ActionInstall   = "install"
	ActionBootLocal = "boot-local"
)

// Progress phases an installer reports.
const (
	PhaseInstalling = "installing"
	PhaseInstalled  = "installed"
	PhaseFailed     = "failed"
)

// MaxProgressBody bounds a progress report.
const MaxProgressBody = 4 << 10

// MaxMessage bounds the message of a progress report.
const MaxMessage = 1024

// Image is the image of an install plan.
type Image struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256,omitempty"`
}

// Plan is what a node's installer is told to do.
type Plan struct {
	Action string `json:"action"`
	Image  *Image `json:"image,omitempty"`
}

// Progress is an installer's report.
type Progress struct {
	Phase   string `json:"phase"`
	Percent int    `json:"percent"`
	Message string `json:"message,omitempty"`
}

// Node is what the server needs to know about a declared node.
type Node struct {
	Name string
	IP   net.IP
	// ImageFile is the local file behind a file:// image, served at
	// .../image; "" when the image is fetched from elsewhere.
	ImageFile string
}

// Planner is the PiNode controller's side of the handshake.
type Planner interface {
	// Node returns the declared node with this MAC.
	Node(mac net.HardwareAddr) (Node, bool)
	// Plan returns the node's plan; imageURL is where this server serves
	// a local image for it.
	Plan(mac net.HardwareAddr, imageURL string) Plan
	// Report records a progress report.
	Report(mac net.HardwareAddr, p Progress)
}

// Server is the handshake HTTP handler.
type Server struct {
	planner Planner
	log     logr.Logger
	mux     *http.ServeMux
}

// New returns the handler.
func New(p Planner, log logr.Logger) *Server {
	s := &Server{planner: p, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /netboot/v1/nodes/{mac}/plan", s.node(s.plan))
	s.mux.HandleFunc("POST /netboot/v1/nodes/{mac}/progress", s.node(s.progress))
	s.mux.HandleFunc("GET /netboot/v1/nodes/{mac}/image", s.node(s.image))
	s.mux.HandleFunc("HEAD /netboot/v1/nodes/{mac}/image", s.node(s.image))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// node resolves {mac} to a declared node reached from its own IP.
func (s *Server) node(h func(http.ResponseWriter, *http.Request, net.HardwareAddr, Node)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mac, err := net.ParseMAC(r.PathValue("mac"))
		if err != nil || len(mac) != 6 {
			http.Error(w, "not a MAC address", http.StatusBadRequest)
			return
		}
		n, ok := s.planner.Node(mac)
		if !ok {
			http.Error(w, "no PiNode has this MAC", http.StatusNotFound)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip == nil || !ip.Equal(n.IP) {
			s.log.Info("refused a handshake from another address", "node", n.Name, "from", host, "want", n.IP.String())
			http.Error(w, fmt.Sprintf("only %s may use this node's URLs", n.IP), http.StatusForbidden)
			return
		}
		h(w, r, mac, n)
	}
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request, mac net.HardwareAddr, n Node) {
	imageURL := "http://" + r.Host + "/netboot/v1/nodes/" + mac.String() + "/image"
	p := s.planner.Plan(mac, imageURL)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(p)
}

func (s *Server) progress(w http.ResponseWriter, r *http.Request, mac net.HardwareAddr, n Node) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxProgressBody+1))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	p, err := ParseProgress(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.planner.Report(mac, p)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) image(w http.ResponseWriter, r *http.Request, mac net.HardwareAddr, n Node) {
	if n.ImageFile == "" {
		http.Error(w, "this node's image is not served here", http.StatusNotFound)
		return
	}
	f, err := os.Open(n.ImageFile)
	if err != nil {
		http.Error(w, "image: "+err.Error(), http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "image is not a regular file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime(), f) // Range, If-Modified-Since, HEAD
}

// ParseProgress decodes and checks a progress report: a JSON object with
// a known phase, a percent in 0..100 and a short single-line message.
func ParseProgress(body []byte) (Progress, error) {
	if len(body) > MaxProgressBody {
		return Progress{}, fmt.Errorf("progress report larger than %d bytes", MaxProgressBody)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	var p Progress
	if err := dec.Decode(&p); err != nil {
		return Progress{}, fmt.Errorf("progress report: %w", err)
	}
	if dec.More() {
		return Progress{}, errors.New("progress report: more than one JSON value")
	}
	switch p.Phase {
	case PhaseInstalling, PhaseInstalled, PhaseFailed:
	default:
		return Progress{}, fmt.Errorf("progress report: phase %q: want installing, installed or failed", p.Phase)
	}
	if p.Percent < 0 || p.Percent > 100 {
		return Progress{}, fmt.Errorf("progress report: percent %d: want 0 to 100", p.Percent)
	}
	if !utf8.ValidString(p.Message) {
		return Progress{}, errors.New("progress report: message is not UTF-8")
	}
	p.Message = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, p.Message)
	if len(p.Message) > MaxMessage {
		p.Message = p.Message[:MaxMessage]
		for !utf8.ValidString(p.Message) {
			p.Message = p.Message[:len(p.Message)-1]
		}
	}
	return p, nil
}
