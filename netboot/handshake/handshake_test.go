// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package handshake

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
)

type fakePlanner struct {
	mu      sync.Mutex
	node    Node
	mac     net.HardwareAddr
	reports []Progress
	gotURL  string
}

func (f *fakePlanner) Node(mac net.HardwareAddr) (Node, bool) {
	return f.node, mac.String() == f.mac.String()
}

func (f *fakePlanner) Plan(mac net.HardwareAddr, imageURL string) Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gotURL = imageURL
	return Plan{Action: ActionInstall, Image: &Image{URL: imageURL, SHA256: "ab"}}
}

func (f *fakePlanner) Report(mac net.HardwareAddr, p Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, p)
}

func do(t *testing.T, s *Server, method, path, from, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://10.77.0.1:8070"+path, strings.NewReader(body))
	r.RemoteAddr = from + ":40000"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestHandshake(t *testing.T) {
	img := filepath.Join(t.TempDir(), "os.img")
	os.WriteFile(img, []byte("0123456789"), 0o644)
	mac, _ := net.ParseMAC("dc:a6:32:01:02:03")
	fp := &fakePlanner{mac: mac, node: Node{Name: "pi-10", IP: net.ParseIP("10.77.0.10"), ImageFile: img}}
	s := New(fp, logr.Discard())
	base := "/netboot/v1/nodes/dc:a6:32:01:02:03"

	w := do(t, s, http.MethodGet, base+"/plan", "10.77.0.10", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"action":"install"`) {
		t.Fatalf("plan: %d %s", w.Code, w.Body)
	}
	if fp.gotURL != "http://10.77.0.1:8070"+base+"/image" {
		t.Errorf("image URL %q", fp.gotURL)
	}
	if w := do(t, s, http.MethodGet, base+"/plan", "10.77.0.11", ""); w.Code != http.StatusForbidden {
		t.Errorf("plan from another IP: %d, want 403", w.Code)
	}
	if w := do(t, s, http.MethodGet, "/netboot/v1/nodes/dc:a6:32:99:99:99/plan", "10.77.0.10", ""); w.Code != http.StatusNotFound {
		t.Errorf("plan of an unknown MAC: %d, want 404", w.Code)
	}
	if w := do(t, s, http.MethodGet, "/netboot/v1/nodes/banana/plan", "10.77.0.10", ""); w.Code != http.StatusBadRequest {
		t.Errorf("plan of a non-MAC: %d, want 400", w.Code)
	}

	if w := do(t, s, http.MethodPost, base+"/progress", "10.77.0.10", `{"phase":"installing","percent":40,"message":"copying"}`); w.Code != http.StatusNoContent {
		t.Fatalf("progress: %d %s", w.Code, w.Body)
	}
	if w := do(t, s, http.MethodPost, base+"/progress", "10.77.0.10", `{"phase":"done"}`); w.Code != http.StatusBadRequest {
		t.Errorf("bad progress: %d", w.Code)
	}
	if w := do(t, s, http.MethodPost, base+"/progress", "10.77.0.99", `{"phase":"installed","percent":100}`); w.Code != http.StatusForbidden {
		t.Errorf("progress from another IP: %d", w.Code)
	}
	if len(fp.reports) != 1 || fp.reports[0].Percent != 40 {
		t.Errorf("reports %+v, want the one valid report", fp.reports)
	}

	w = do(t, s, http.MethodGet, base+"/image", "10.77.0.10", "", "Range", "bytes=2-5")
	if b, _ := io.ReadAll(w.Body); w.Code != http.StatusPartialContent || string(b) != "2345" {
		t.Errorf("image range: %d %q", w.Code, b)
	}
	if w := do(t, s, http.MethodGet, base+"/image", "10.77.0.10", ""); w.Body.String() != "0123456789" {
		t.Errorf("image: %q", w.Body)
	}
}

func TestParseProgress(t *testing.T) {
	for _, bad := range []string{``, `{}`, `{"phase":"installed","percent":101}`, `{"phase":"installed","percent":-1}`,
		`{"phase":"installed","extra":1}`, `{"phase":"installed"} {}`, `[1]`, `{"phase":"failed","message":"\xff"}`} {
		if _, err := ParseProgress([]byte(bad)); err == nil {
			t.Errorf("ParseProgress(%q) succeeded", bad)
		}
	}
	p, err := ParseProgress([]byte(`{"phase":"failed","percent":3,"message":"disk\nfull"}`))
	if err != nil || p.Message != "disk full" {
		t.Errorf("ParseProgress = %+v, %v", p, err)
	}
	long := `{"phase":"installing","message":"` + strings.Repeat("é", MaxMessage) + `"}`
	if p, err := ParseProgress([]byte(long)); err != nil || len(p.Message) > MaxMessage {
		t.Errorf("long message: %d bytes, %v", len(p.Message), err)
	}
}
