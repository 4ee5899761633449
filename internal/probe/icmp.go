// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/reconciled/reconciled/apis/v1alpha1"
)

// probeICMP sends one echo request and waits for the reply. As root it uses
// a raw socket (privileged); otherwise, or when the raw socket is refused,
// an unprivileged ICMP datagram socket (net.ipv4.ping_group_range).
func (p *Prober) probeICMP(ctx context.Context, c *v1alpha1.ICMPProbe, start time.Time) Result {
	ip, err := p.resolveIP(ctx, c.Host)
	if err != nil {
		return failure(err, start)
	}
	privileged := os.Geteuid() == 0
	r, err := p.ping(ctx, ip, privileged, start)
	if err != nil && privileged && isPermission(err) {
		r, err = p.ping(ctx, ip, false, start)
	}
	if err != nil {
		if privileged && isPermission(err) {
			err = fmt.Errorf("icmp socket (raw and unprivileged): %w", err)
		}
		return failure(err, start)
	}
	return r
}

// ping sends one echo request to ip. An error is returned when the pinger
// failed; a missing reply is a Result with ReasonTimeout.
func (p *Prober) ping(ctx context.Context, ip *net.IPAddr, privileged bool, start time.Time) (Result, error) {
	remaining := time.Until(start.Add(DefaultTimeout))
	if dl, ok := ctx.Deadline(); ok {
		remaining = time.Until(dl)
	}
	if remaining <= 0 {
		return Result{}, context.DeadlineExceeded
	}
	pinger := probing.New("")
	pinger.SetIPAddr(ip)
	pinger.SetPrivileged(privileged)
	pinger.SetLogger(probing.NoopLogger{})
	pinger.Count = 1
	pinger.Timeout = remaining
	err := pinger.RunWithContext(ctx)
	stats := pinger.Statistics()
	if stats.PacketsRecv > 0 {
		latency := stats.MaxRtt
		if len(stats.Rtts) > 0 {
			latency = stats.Rtts[0]
		}
		return Result{OK: true, Latency: latency, Message: fmt.Sprintf("reply from %s", ip)}, nil
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return Result{}, err
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Result{}, ctx.Err()
	}
	return Result{Latency: time.Since(start), Reason: ReasonTimeout,
		Message: fmt.Sprintf("no echo reply from %s within %v", ip, time.Since(start).Round(time.Millisecond))}, nil
}

// resolveIP returns the first address of host, preferring IPv4.
func (p *Prober) resolveIP(ctx context.Context, host string) (*net.IPAddr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return &net.IPAddr{IP: a.Unmap().AsSlice(), Zone: a.Zone()}, nil
	}
	res := p.resolver
	if res == nil {
		res = net.DefaultResolver
	}
	addrs, err := res.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses found", Name: host, IsNotFound: true}
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return &a, nil
		}
	}
	return &addrs[0], nil
}

// isPermission reports an error opening an ICMP socket for lack of rights.
func isPermission(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission)
}
