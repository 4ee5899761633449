// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package sdnotify

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Message
		wantErr string // substring of the error; "" means success
	}{
		{
			name: "go-systemd SdNotifyReady",
			in:   daemon.SdNotifyReady,
			want: Message{Ready: true, Fields: map[string]string{"READY": "1"}},
		},
		{
			name: "status and ready with trailing newline",
			in:   "STATUS=hello world\nREADY=1\n",
			want: Message{Ready: true, Status: ptr("hello world"), Fields: map[string]string{"STATUS": "hello world", "READY": "1"}},
		},
		{
			name: "watchdog ping",
			in:   daemon.SdNotifyWatchdog,
			want: Message{Watchdog: true, Fields: map[string]string{"WATCHDOG": "1"}},
		},
		{
			name: "watchdog trigger",
			in:   "WATCHDOG=trigger",
			want: Message{WatchdogTrigger: true, Fields: map[string]string{"WATCHDOG": "trigger"}},
		},
		{
			name: "mainpid",
			in:   "MAINPID=123",
			want: Message{MainPID: 123, Fields: map[string]string{"MAINPID": "123"}},
		},
		{
			name:    "mainpid not a number",
			in:      "MAINPID=abc",
			wantErr: "MAINPID",
		},
		{
			name:    "mainpid zero",
			in:      "MAINPID=0",
			wantErr: "MAINPID",
		},
		{
			name:    "mainpid negative",
			in:      "MAINPID=-1",
			wantErr: "MAINPID",
		},
		{
			name:    "line without equals",
			in:      "FOO",
			wantErr: "not a KEY=VALUE",
		},
		{
			name:    "line without equals after a valid one",
			in:      "READY=1\nFOO\n",
			wantErr: "line 2",
		},
		{
			name:    "empty key",
			in:      "=1",
			wantErr: "empty key",
		},
		{
			name: "empty",
			in:   "",
			want: Message{Fields: map[string]string{}},
		},
		{
			name: "only newlines",
			in:   "\n\n\n",
			want: Message{Fields: map[string]string{}},
		},
		{
			name: "empty lines ignored",
			in:   "\nREADY=1\n\nSTATUS=x\n",
			want: Message{Ready: true, Status: ptr("x"), Fields: map[string]string{"READY": "1", "STATUS": "x"}},
		},
		{
			name: "unicode status",
			in:   "STATUS=Démarrage… 起動中 🚀",
			want: Message{Status: ptr("Démarrage… 起動中 🚀"), Fields: map[string]string{"STATUS": "Démarrage… 起動中 🚀"}},
		},
		{
			name: "empty status and value containing equals",
			in:   "STATUS=\nFOO=a=b",
			want: Message{Status: ptr(""), Fields: map[string]string{"STATUS": "", "FOO": "a=b"}},
		},
		{
			name: "ready only with value 1",
			in:   "READY=0",
			want: Message{Fields: map[string]string{"READY": "0"}},
		},
		{
			name: "reloading stopping",
			in:   daemon.SdNotifyReloading + "\n" + daemon.SdNotifyStopping,
			want: Message{Reloading: true, Stopping: true, Fields: map[string]string{"RELOADING": "1", "STOPPING": "1"}},
		},
		{
			name: "numbers",
			in:   "ERRNO=2\nWATCHDOG_USEC=5000000\nEXTEND_TIMEOUT_USEC=18446744073709551615",
			want: Message{
				Errno:             2,
				WatchdogUSec:      ptr(uint64(5000000)),
				ExtendTimeoutUSec: ptr(uint64(18446744073709551615)),
				Fields:            map[string]string{"ERRNO": "2", "WATCHDOG_USEC": "5000000", "EXTEND_TIMEOUT_USEC": "18446744073709551615"},
			},
		},
		{
			name:    "bad errno",
			in:      "ERRNO=-5",
			wantErr: "ERRNO",
		},
		{
			name:    "bad watchdog usec",
			in:      "WATCHDOG_USEC=1s",
			wantErr: "WATCHDOG_USEC",
		},
		{
			name:    "extend timeout overflow",
			in:      "EXTEND_TIMEOUT_USEC=18446744073709551616",
			wantErr: "EXTEND_TIMEOUT_USEC",
		},
		{
			name: "unknown fields kept",
			in:   "FDSTORE=1\nFDNAME=sock\nMONOTONIC_USEC=12345\nREADY=1",
			want: Message{Ready: true, Fields: map[string]string{"FDSTORE": "1", "FDNAME": "sock", "MONOTONIC_USEC": "12345", "READY": "1"}},
		},
		{
			name: "first assignment wins, flags from any",
			in:   "STATUS=one\nSTATUS=two\nREADY=0\nREADY=1",
			want: Message{Ready: true, Status: ptr("one"), Fields: map[string]string{"STATUS": "one", "READY": "0"}},
		},
		{
			name: "invalid repeated number ignored like systemd",
			in:   "MAINPID=7\nMAINPID=x",
			want: Message{MainPID: 7, Fields: map[string]string{"MAINPID": "7"}},
		},
		{
			name:    "NUL byte",
			in:      "READY=1\x00",
			wantErr: "NUL",
		},
		{
			name: "exactly the limit",
			in:   "STATUS=" + strings.Repeat("x", MaxMessageSize-len("STATUS=")),
			want: Message{
				Status: ptr(strings.Repeat("x", MaxMessageSize-len("STATUS="))),
				Fields: map[string]string{"STATUS": strings.Repeat("x", MaxMessageSize-len("STATUS="))},
			},
		},
		{
			name:    "5000 bytes rejected",
			in:      "STATUS=" + strings.Repeat("x", 5000-len("STATUS=")),
			wantErr: "exceeds the limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseMessage(%q) = %+v, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMessage(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMessage(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseMessage(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		"", "\n", "READY=1", "READY=1\n", "STATUS=hello world\nREADY=1\n", "WATCHDOG=1", "WATCHDOG=trigger",
		"MAINPID=123", "MAINPID=abc", "FOO", "=", "=x", "a=b=c", "ERRNO=2\nWATCHDOG_USEC=1000\nEXTEND_TIMEOUT_USEC=5",
		"STATUS=Démarrage 🚀", "FDSTORE=1\nFDNAME=x", "READY=1\x00", "\xff\xfe=\x80", strings.Repeat("A=B\n", 1100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		if len(b) > MaxMessageSize {
			t.Fatalf("accepted a %d-byte message", len(b))
		}
		if m.Fields == nil {
			t.Fatal("accepted message has nil Fields")
		}
		lines := map[string]bool{}
		for _, l := range bytes.Split(b, []byte("\n")) {
			lines[string(l)] = true
		}
		for k, v := range m.Fields {
			if k == "" {
				t.Fatalf("empty key in Fields of %q", b)
			}
			if !lines[k+"="+v] {
				t.Fatalf("Fields[%q] = %q does not come from a line of %q", k, v, b)
			}
		}
		if m.Ready && !lines["READY=1"] {
			t.Fatalf("Ready set without a READY=1 line in %q", b)
		}
		if m.Status != nil && m.Fields["STATUS"] != *m.Status {
			t.Fatalf("Status %q differs from Fields[STATUS] %q", *m.Status, m.Fields["STATUS"])
		}
	})
}
