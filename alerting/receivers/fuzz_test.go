// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// jsonString is s as encoding/json decodes it after encoding it: every
// byte that is not part of valid UTF-8 becomes U+FFFD.
func jsonString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// fuzzTime maps arbitrary numbers to a time JSON can carry (years 1-9999).
func fuzzTime(sec int64, nsec uint32) time.Time {
	const span = 253402300799 + 62135596800 // 0001-01-01 .. 9999-12-31
	if sec < 0 {
		sec = -(sec + 1)
	}
	return time.Unix(sec%span-62135596800, int64(nsec%1e9)).UTC()
}

func FuzzWebhookPayload(f *testing.F) {
	f.Add("n-1", "ops", `{}:{kind="Link"}`, "hecnet-gw", "LinkDown", "Link", "a2rtr", "critical",
		"Link a2rtr is Down", "Link a2rtr is Up", "connection refused", "site", "hecnet", int64(1772600767), uint32(0), int64(0), false)
	f.Add("", "", "", "", "", "", "", "", "", "", "", "", "", int64(0), uint32(0), int64(-1), true)
	f.Add("\x00\"\\", "r\u2028", "<>&", "h\xff", "a\tb", "K\nK", "o\r\n", "s", "\xc3\x28", "=?utf-8?q?x?=", "line1\nline2", "app.kubernetes.io/name", "\x7f", int64(-5), uint32(999999999), int64(253402300799), true)
	f.Fuzz(func(t *testing.T, id, route, group, host, name, kind, object, severity, summary, resolved, message, lk, lv string,
		start int64, nsec uint32, end int64, test bool) {
		a := Alert{Name: name, Kind: kind, Object: object, Severity: severity, Labels: map[string]string{lk: lv, "kind": kind},
			Summary: summary, ResolvedSummary: resolved, Message: message, StartsAt: fuzzTime(start, nsec),
			Fingerprint: Fingerprint(name, kind, object)}
		b := a
		b.Labels = nil
		if end > 0 {
			b.EndsAt = fuzzTime(end, nsec)
		}
		n := Notification{ID: id, Route: route, GroupKey: group, Alerts: []Alert{a, b}, Host: host,
			CreatedAt: fuzzTime(end, 0), Test: test}
		body, err := EncodeWebhookPayload(n)
		if err != nil {
			t.Fatalf("EncodeWebhookPayload: %v", err)
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("invalid JSON: %q", body)
		}
		var p WebhookPayload
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode: %v\n%s", err, body)
		}
		// What JSON can carry must come back unchanged.
		norm := func(a Alert) Alert {
			for _, s := range []*string{&a.Name, &a.Kind, &a.Object, &a.Severity, &a.Summary, &a.ResolvedSummary, &a.Message, &a.Fingerprint} {
				*s = jsonString(*s)
			}
			if a.Labels != nil {
				l := map[string]string{}
				for k, v := range a.Labels {
					l[jsonString(k)] = jsonString(v)
				}
				// Two invalid keys may collapse into one; so does decoding.
				if jsonString(lk) == jsonString("kind") {
					l[jsonString("kind")] = jsonString(kind)
				}
				a.Labels = l
			}
			return a
		}
		want := []Alert{norm(a), norm(b)}
		if diff := cmp.Diff(want, p.Alerts); diff != "" {
			t.Errorf("alerts do not round-trip (-want +got):\n%s", diff)
		}
		wantID := jsonString(id)
		if id == "" {
			wantID = notificationID(n)
		}
		if p.Version != PayloadVersion || p.ID != wantID || p.Route != jsonString(route) || p.GroupKey != jsonString(group) ||
			p.Host != jsonString(host) || p.Test != test || !p.CreatedAt.Equal(n.CreatedAt) {
			t.Errorf("payload %+v does not match %+v", p, n)
		}
		// a is firing, so the notification is.
		if p.Status != StatusFiring {
			t.Errorf("status %q, want firing", p.Status)
		}
	})
}

// messageIDRE is what a Message-ID may look like.
var messageIDRE = regexp.MustCompile(`^<[A-Za-z0-9._+=-]+@[A-Za-z0-9.-]+>$`)

// FuzzEmailHeaders checks that nothing from a notification or address can
// add a header or a line break to the message's header.
func FuzzEmailHeaders(f *testing.F) {
	f.Add("Link a2rtr is Down", "Link a2rtr is Up", "ops", "hecnet-gw", "n-1", "a2rtr", "Ops", false)
	f.Add("x\r\nBcc: victim@example.org", "y\nX-Evil: 1", "r\rSubject: z", "h\r\n.", "id\r\nX: y", "o\u2028p", "N\r\nBcc: e@f", true)
	f.Add("=?utf-8?q?a=0D=0ABcc:_x?=", "\x00\x85", "\xff\xfe", "", "", "", "", true)
	f.Add(strings.Repeat("ä", 500), strings.Repeat("\n", 20), strings.Repeat("r", 300), "h", "i", "o", strings.Repeat("n", 100), false)
	f.Fuzz(func(t *testing.T, summary, resolved, route, host, id, object, display string, firing bool) {
		a := linkAlert(object, !firing)
		a.Summary, a.ResolvedSummary = summary, resolved
		n := notification(id, a, a)
		n.Route, n.Host = route, host
		from := &mail.Address{Name: display, Address: "alerts@example.net"}
		to := []*mail.Address{{Name: display, Address: "ops@example.net"}, {Address: "noc@example.net"}}
		msg := buildMessage(from, to, n)

		head, _, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("no end of header:\n%q", msg)
		}
		if bytes.Count(msg, []byte("\n")) != bytes.Count(msg, []byte("\r\n")) || bytes.Count(msg, []byte("\r")) != bytes.Count(msg, []byte("\r\n")) {
			t.Fatalf("bare CR or LF in message:\n%q", msg)
		}
		wantKeys := map[string]bool{"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true,
			"Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true, "Auto-Submitted": true,
			"X-Reconciled-Route": true, "X-Reconciled-Status": true}
		for _, line := range strings.Split(string(head), "\r\n") {
			if len(line) > 998 {
				t.Errorf("header line of %d bytes", len(line))
			}
			if strings.HasPrefix(line, " ") {
				continue // folded
			}
			k, _, ok := strings.Cut(line, ": ")
			if !ok || !(wantKeys[textproto.CanonicalMIMEHeaderKey(k)] || k == "X-Reconciled-Test") {
				t.Errorf("unexpected header line %q", line)
			}
		}
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("parse: %v\n%q", err, msg)
		}
		for k := range m.Header {
			if !wantKeys[k] && k != "X-Reconciled-Test" {
				t.Errorf("injected header %q", k)
			}
		}
		for k := range wantKeys {
			if len(m.Header[k]) != 1 {
				t.Errorf("header %s appears %d times", k, len(m.Header[k]))
			}
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("decode subject %q: %v", m.Header.Get("Subject"), err)
		}
		if strings.ContainsAny(subject, "\r\n\x00") {
			t.Errorf("subject %q has control characters", subject)
		}
		if mid := m.Header.Get("Message-ID"); !messageIDRE.MatchString(mid) {
			t.Errorf("Message-ID %q", mid)
		}
		if _, err := m.Header.AddressList("To"); err != nil {
			t.Errorf("To %q: %v", m.Header.Get("To"), err)
		}
	})
}
