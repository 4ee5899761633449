// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package receivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// execWaitDelay bounds how long Send waits for the command's stderr to be
// closed once it exited (a child it left behind may hold it open).
const execWaitDelay = 2 * time.Second

// execReceiver runs a command with the notification JSON on stdin.
type execReceiver struct {
	name string
	argv []string
	o    Options
}

func newExec(spec v1alpha1.ExecCheck, name string, o Options) (*execReceiver, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errors.New("exec: empty command")
	}
	return &execReceiver{name: name, argv: append([]string(nil), spec.Command...), o: o}, nil
}

// Name implements Receiver.
func (x *execReceiver) Name() string { return x.name }

// Send implements Receiver: it runs the command with the webhook payload on
// stdin and RECONCILED_ALERT_STATUS (firing or resolved),
// RECONCILED_ALERT_ROUTE, RECONCILED_NOTIFICATION_ID and
// RECONCILED_ALERT_TEST (true or false) in its environment; exit status 0
// means accepted. On timeout or cancellation the command's process group
// is killed.
func (x *execReceiver) Send(ctx context.Context, n Notification) error {
	body, err := EncodeWebhookPayload(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, x.o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.argv[0], x.argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(),
		"RECONCILED_ALERT_STATUS="+statusOf(n),
		"RECONCILED_ALERT_ROUTE="+headerSafe(n.Route),
		"RECONCILED_NOTIFICATION_ID="+headerSafe(notificationID(n)),
		"RECONCILED_ALERT_TEST="+strconv.FormatBool(n.Test),
	)
	stderr := &headBuffer{max: maxErrorBody}
	cmd.Stderr = stderr
	cmd.WaitDelay = execWaitDelay
	setProcessGroup(cmd)
	err = cmd.Run()
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil) {
		// Exit status 0; at worst a leftover child still holds stderr.
		return nil
	}
	msg := ""
	if s := truncate(stderr.String(), maxErrorBody); s != "" {
		msg = ": stderr: " + s
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("exec %s: %w%s", x.argv[0], cerr, msg)
	}
	return fmt.Errorf("exec %s: %w%s", x.argv[0], err, msg)
}

// headBuffer keeps the first max bytes written to it and discards the rest.
type headBuffer struct {
	max int
	b   bytes.Buffer
}

// Write implements io.Writer; it never fails.
func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max + 1 - h.b.Len(); room > 0 {
		h.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// String returns what was kept.
func (h *headBuffer) String() string { return h.b.String() }
