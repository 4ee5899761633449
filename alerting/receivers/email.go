// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// Header parts are bounded (before encoding) so that header lines stay far
// below 998 bytes.
const (
	maxSubjectRunes     = 200
	maxDisplayNameRunes = 64
)

// emailReceiver sends mail through a smarthost.
type emailReceiver struct {
	name string
	spec v1alpha1.EmailReceiver
	host string // smarthost without port: TLS server name and PlainAuth host
	from *mail.Address
	to   []*mail.Address
	o    Options
}

func newEmail(spec v1alpha1.EmailReceiver, name string, o Options) (*emailReceiver, error) {
	host, port, err := net.SplitHostPort(spec.Smarthost)
	if err != nil {
		return nil, fmt.Errorf("email smarthost %q: %w", spec.Smarthost, err)
	}
	if host == "" || port == "" {
		return nil, fmt.Errorf("email smarthost %q: want host:port", spec.Smarthost)
	}
	from, err := mail.ParseAddress(spec.From)
	if err != nil {
		return nil, fmt.Errorf("email from %q: %w", spec.From, err)
	}
	if len(spec.To) == 0 {
		return nil, errors.New("email: no recipients in to")
	}
	e := &emailReceiver{name: name, spec: spec, host: host, from: from, o: o}
	for _, s := range spec.To {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("email to %q: %w", s, err)
		}
		e.to = append(e.to, a)
	}
	if spec.Username != "" && spec.PasswordFile == "" {
		return nil, errors.New("email: username is set but passwordFile is not")
	}
	return e, nil
}

// Name implements Receiver.
func (e *emailReceiver) Name() string { return e.name }

// Send implements Receiver: one SMTP transaction with the smarthost.
func (e *emailReceiver) Send(ctx context.Context, n Notification) error {
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	msg := buildMessage(e.from, e.to, n)
	var password string
	if e.spec.Username != "" {
		p, err := readSecretFile("password file", e.spec.PasswordFile)
		if err != nil {
			return err
		}
		password = strings.TrimRight(p, "\r\n")
	}
	if err := e.deliver(ctx, n, msg, password); err != nil {
		return scrub(ctxErr(ctx, err), password)
	}
	return nil
}

func (e *emailReceiver) deliver(ctx context.Context, n Notification, msg []byte, password string) error {
	sh := e.spec.Smarthost
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", sh)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer conn.Close()
	// Cancellation and the deadline interrupt whatever read or write is
	// blocked; ctx.Err() is set by then, so ctxErr reports it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return fmt.Errorf("smtp %s: greeting: %w", sh, err)
	}
	defer c.Close()
	if err := c.Hello(domainPart(n.Host)); err != nil {
		return fmt.Errorf("smtp %s: EHLO: %w", sh, err)
	}
	if e.spec.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s: server does not offer STARTTLS, which starttls: true requires", sh)
		}
		if err := c.StartTLS(&tls.Config{ServerName: e.host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", sh, err)
		}
	}
	if u := e.spec.Username; u != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return fmt.Errorf("smtp %s: server does not offer AUTH (with starttls: %t)", sh, e.spec.StartTLS)
		}
		if !hasWord(mechs, "PLAIN") {
			return fmt.Errorf("smtp %s: server does not offer AUTH PLAIN (offers %q)", sh, mechs)
		}
		if err := c.Auth(smtp.PlainAuth("", u, password, e.host)); err != nil {
			return fmt.Errorf("smtp %s: authentication as %q failed: %w", sh, u, err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM:<%s>: %w", sh, e.from.Address, err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to.Address); err != nil {
			// Nothing was sent: a retry starts clean, no recipient gets it twice.
			_ = c.Reset()
			return smtpPermanent(fmt.Errorf("smtp %s: RCPT TO:<%s>: %w", sh, to.Address, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", sh, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: writing message: %w", sh, err)
	}
	if err := w.Close(); err != nil {
		return smtpPermanent(fmt.Errorf("smtp %s: message not accepted: %w", sh, err))
	}
	// The message is accepted; a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// hasWord reports whether the space-separated list s contains w (ASCII
// case-insensitively).
func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// scrub replaces secret in err's text, should a peer ever echo it.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "<redacted>"))
}

// Subject returns the email subject for n, e.g. "[FIRING] Link a2rtr is
// Down", "[FIRING:3] Link a2rtr is Down (+2 more)", "[RESOLVED] Link a2rtr
// is Up", prefixed with "[TEST] " for test notifications; a Check's names
// the host too ("[FIRING] Check root_usage is sick (was soso) on web1"). It may contain
// any characters of the alerts' summaries; the email receiver sanitizes and
// encodes it.
func Subject(n Notification) string {
	status := statusOf(n)
	var alerts []Alert
	for _, a := range n.Alerts {
		if a.Firing() == (status == StatusFiring) {
			alerts = append(alerts, a)
		}
	}
	if len(alerts) == 0 {
		alerts = n.Alerts
	}
	tag := strings.ToUpper(status)
	var s string
	switch len(alerts) {
	case 0:
		s = fmt.Sprintf("[%s] reconciled route %s", tag, n.Route)
	case 1:
		s = fmt.Sprintf("[%s] %s", tag, summaryOf(alerts[0]))
	default:
		s = fmt.Sprintf("[%s:%d] %s (+%d more)", tag, len(alerts), summaryOf(alerts[0]), len(alerts)-1)
	}
	if len(alerts) > 0 && alerts[0].Labels[LabelLevel] != "" && n.Host != "" {
		s += " on " + n.Host // a Check: host, item, level and previous level
	}
	if n.Test {
		s = "[TEST] " + s
	}
	return s
}

// MessageID returns the Message-ID header of n's email, "<ID@host>". It is
// the same for every attempt to deliver the same notification.
func MessageID(n Notification) string {
	return "<" + idLeft(notificationID(n)) + "@" + domainPart(n.Host) + ">"
}

// buildMessage renders n as an RFC 5322 message with CRLF line endings.
func buildMessage(from *mail.Address, to []*mail.Address, n Notification) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", addressHeader(from))
	var tos []string
	for _, a := range to {
		tos = append(tos, addressHeader(a))
	}
	header("To", foldList(tos, len("To: ")))
	header("Subject", encodeHeader(Subject(n)))
	header("Date", createdAt(n).Format(time.RFC1123Z))
	header("Message-ID", MessageID(n))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	body := Body(n)
	cte := "7bit"
	if !isPlain7bit(body) {
		cte = "quoted-printable"
	}
	header("Content-Transfer-Encoding", cte)
	header("Auto-Submitted", "auto-generated")
	header("X-Reconciled-Route", encodeHeader(n.Route))
	header("X-Reconciled-Status", statusOf(n))
	if n.Test {
		header("X-Reconciled-Test", "true")
	}
	b.WriteString("\r\n")
	if cte == "7bit" {
		b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	} else {
		w := quotedprintable.NewWriter(&b)
		_, _ = w.Write([]byte(body))
		_ = w.Close()
	}
	return b.Bytes()
}

// Body returns the plain-text body of n's email (LF line endings): per
// alert its summary, severity, since, message, labels and a `reconcilectl
// describe` hint, then the route, host and notification id.
func Body(n Notification) string {
	now := createdAt(n)
	var b strings.Builder
	if n.Test {
		b.WriteString("This is a test notification, sent by `reconcilectl alert test`.\n\n")
	}
	firing := 0
	for _, a := range n.Alerts {
		if a.Firing() {
			firing++
		}
	}
	fmt.Fprintf(&b, "%d firing, %d resolved alert(s) of route %s on host %s.\n",
		firing, len(n.Alerts)-firing, oneLine(n.Route), oneLine(n.Host))
	for _, a := range n.Alerts {
		b.WriteString("\n")
		state := "FIRING"
		if !a.Firing() {
			state = "RESOLVED"
		}
		fmt.Fprintf(&b, "[%s] %s\n", state, oneLine(summaryOf(a)))
		field := func(k, v string) { fmt.Fprintf(&b, "  %-9s %s\n", k+":", v) }
		if a.Severity != "" {
			field("severity", oneLine(a.Severity))
		}
		if !a.StartsAt.IsZero() {
			end := now
			if !a.Firing() {
				end = a.EndsAt
			}
			field("since", fmt.Sprintf("%s (for %s)", a.StartsAt.UTC().Format(time.RFC3339), humanDuration(end.Sub(a.StartsAt))))
		}
		if !a.Firing() {
			field("resolved", a.EndsAt.UTC().Format(time.RFC3339))
		}
		if a.Message != "" {
			field("message", indent(a.Message, strings.Repeat(" ", 12)))
		}
		if len(a.Labels) > 0 {
			field("labels", formatLabels(a.Labels))
		}
		if a.Kind != "" && a.Object != "" {
			field("details", fmt.Sprintf("reconcilectl describe %s/%s", oneLine(strings.ToLower(a.Kind)), oneLine(a.Object)))
		}
	}
	fmt.Fprintf(&b, "\n-- \nreconciled on host %s, route %s, notification %s\n",
		oneLine(n.Host), oneLine(n.Route), oneLine(notificationID(n)))
	return b.String()
}

// humanDuration formats d with its two most significant units: "45s",
// "5m30s", "2h5m", "3d4h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	days, s := s/86400, s%86400
	hours, s := s/3600, s%3600
	mins, secs := s/60, s%60
	switch {
	case days > 0:
		return joinUnits(days, "d", hours, "h")
	case hours > 0:
		return joinUnits(hours, "h", mins, "m")
	case mins > 0:
		return joinUnits(mins, "m", secs, "s")
	default:
		return fmt.Sprintf("%ds", secs)
	}
}

func joinUnits(a int64, au string, b int64, bu string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, au)
	}
	return fmt.Sprintf("%d%s%d%s", a, au, b, bu)
}

// formatLabels renders labels sorted by name: "kind=Link, name=a2rtr".
func formatLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, oneLine(k)+"="+oneLine(l[k]))
	}
	return strings.Join(parts, ", ")
}

// oneLine replaces line breaks and other control characters in s by
// spaces, for single-line body fields.
func oneLine(s string) string { return headerSafe(s) }

// indent normalizes line endings in s and indents continuation lines.
func indent(s, prefix string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.Map(func(r rune) rune {
			if r == '\t' {
				return r
			}
			if isControl(r) {
				return ' '
			}
			return r
		}, l)
	}
	return strings.Join(lines, "\n"+prefix)
}

// isControl reports whether r is a control character or a line separator.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029'
}

// headerSafe returns s as valid UTF-8 without control characters (CR and
// LF included), which become spaces, trimmed.
func headerSafe(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s))
}

// encodeHeader makes s safe for an unstructured header field: no control
// characters, at most maxSubjectRunes runes, RFC 2047 encoded when not
// ASCII, folded between encoded words.
func encodeHeader(s string) string {
	s = truncateRunes(headerSafe(s), maxSubjectRunes)
	// A literal "=?" would be taken for the start of an encoded word.
	s = strings.ReplaceAll(s, "=?", "= ?")
	enc := mime.QEncoding.Encode("utf-8", s)
	if enc != s {
		enc = strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
	}
	return enc
}

// addressHeader renders a for the From or To header. Non-ASCII display
// names are B-encoded: mail.Address.String's Q-encoding leaves characters
// such as a backslash that net/mail then cannot parse.
func addressHeader(a *mail.Address) string {
	name, addr := truncateRunes(headerSafe(a.Name), maxDisplayNameRunes), headerSafe(a.Address)
	if !isASCII(name) {
		enc := strings.ReplaceAll(mime.BEncoding.Encode("utf-8", name), "?= =?", "?=\r\n =?")
		return enc + " " + (&mail.Address{Address: addr}).String()
	}
	return (&mail.Address{Name: name, Address: addr}).String()
}

// truncateRunes cuts s to at most n runes, marking a cut with "...".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-3]) + "..."
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// foldList joins items with ", ", folding lines longer than 78 characters.
func foldList(items []string, used int) string {
	var b strings.Builder
	col := used
	for i, it := range items {
		if i > 0 {
			if col+2+len(it) > 78 {
				b.WriteString(",\r\n ")
				col = 1
			} else {
				b.WriteString(", ")
				col += 2
			}
		}
		b.WriteString(it)
		if i := strings.LastIndex(it, "\n"); i >= 0 {
			col = len(it) - i - 1
		} else {
			col += len(it)
		}
	}
	return b.String()
}

// isPlain7bit reports whether body can go as 7bit: ASCII only, lines of
// at most 998 bytes.
func isPlain7bit(body string) bool {
	line := 0
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c >= 0x80 || c == '\r' || c == 0 {
			return false
		}
		if c == '\n' {
			line = 0
			continue
		}
		if line++; line > 998 {
			return false
		}
	}
	return true
}

// idLeft returns id when it is a safe Message-ID left part (dot-atom of
// letters, digits and ._+=-), and a hash of it otherwise.
func idLeft(id string) string {
	ok := id != "" && len(id) <= 128 && id[0] != '.' && id[len(id)-1] != '.' && !strings.Contains(id, "..")
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+=-", c) >= 0
	}
	if ok {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:16])
}

// domainPart returns host reduced to letters, digits, dots and hyphens,
// for EHLO and Message-ID: the daemon's host name when host is empty, and
// "localhost" when nothing is left.
func domainPart(host string) string {
	if host == "" {
		host, _ = os.Hostname()
	}
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, host)
	s = strings.Trim(s, ".-")
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", ".")
	}
	if s == "" || len(s) > 253 {
		return "localhost"
	}
	return s
}
