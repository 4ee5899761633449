// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"net"
	"time"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// probeTCP connects to the address and closes the connection with a reset
// (SO_LINGER 0), so no TIME_WAIT socket is left behind for every probe.
func (p *Prober) probeTCP(ctx context.Context, c *v1alpha1.TCPCheck, start time.Time) Result {
	conn, err := p.dialer().DialContext(ctx, "tcp", c.Address)
	latency := time.Since(start)
	if err != nil {
		return failure(err, start)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // Onoff=1, Linger=0: Close sends RST.
	}
	_ = conn.Close()
	return Result{OK: true, Latency: latency}
}
