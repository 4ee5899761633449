// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package mqttbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/resources"
)

// Statuses: every change of a resource is published retained on
// <prefix>/status/<kind>/<name>, coalesced while the broker is away.

// relist watches every kind, then records the status of every resource,
// forgetting those that are gone. The caller reads the events.
func (b *Bridge) relist() (<-chan resources.Event, func()) {
	events, stop := b.source.Watch("")
	now := b.now()
	seen := map[resources.Key]bool{}
	for _, ki := range v1alpha1.Kinds {
		for _, o := range b.source.List(ki.Kind) {
			k := resources.Key{Kind: ki.Kind, Name: o.GetObjectMeta().Name}
			seen[k] = true
			b.out.set(k, StatusOf(o), now)
		}
	}
	b.out.removeMissing(seen)
	return events, stop
}

// statusLoop records every change the watch reports, listing again when
// the watch falls behind.
func (b *Bridge) statusLoop(ctx context.Context, events <-chan resources.Event, stop func()) {
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case ev, ok := <-events:
			if !ok {
				stop()
				b.log.V(1).Info("status watch fell behind; listing again")
				events, stop = b.relist()
				continue
			}
			if ev.Object == nil {
				continue
			}
			k := resources.Key{Kind: ev.Object.GetTypeMeta().Kind, Name: ev.Object.GetObjectMeta().Name}
			if ev.Type == resources.Deleted {
				b.out.remove(k)
			} else {
				b.out.set(k, StatusOf(ev.Object), b.now())
			}
		}
	}
}

// retryDelay is the wait before publishing again after a failure while the
// connection is (believed to be) up.
const retryDelay = time.Second

// publishLoop publishes what the outbox holds whenever the connection is
// up; on a new connection it first subscribes and says it is online.
func (b *Bridge) publishLoop(ctx context.Context, c client) {
	retry := time.NewTimer(0)
	<-retry.C
	for {
		select {
		case <-ctx.Done():
			retry.Stop()
			return
		case <-b.out.wake:
		case <-retry.C:
		}
		if err := b.flush(ctx, c); err != nil && ctx.Err() == nil {
			b.log.V(1).Info("MQTT publish failed; retrying", "error", err.Error())
			retry.Reset(retryDelay)
		}
	}
}

// flush publishes everything waiting, while the connection is up.
func (b *Bridge) flush(ctx context.Context, c client) error {
	up, hello, conn := b.out.state()
	if !up {
		return nil // connected() wakes the loop
	}
	if hello {
		if err := b.greet(ctx, c); err != nil {
			if !permanent(err) {
				return err
			}
			// Statuses can still be published; trying again on this
			// connection would be refused again.
			b.log.Error(err, "the MQTT broker refused the bridge's subscriptions: commands will not be received")
		}
		b.out.greeted(conn)
	}
	for ctx.Err() == nil {
		it, dropped, ok := b.out.next()
		if !ok {
			return nil
		}
		if dropped > 0 {
			b.log.Info("dropped MQTT error reports and replies: too many waiting", "dropped", dropped)
		}
		p := &paho.Publish{QoS: 1}
		if it.msg != nil {
			p.Topic, p.Payload, p.Properties = it.msg.topic, it.msg.payload, it.msg.props
		} else {
			ki, _ := v1alpha1.LookupKind(it.key.Kind)
			p.Topic, p.Payload, p.Retain = b.prefix+"/status/"+ki.Singular+"/"+it.key.Name, it.status, true
		}
		if err := b.publish(ctx, c, p); err != nil {
			if !permanent(err) {
				b.out.failed(it)
				return err
			}
			// Retrying would not help, and would hold up the rest.
			b.log.Info("MQTT publish refused; dropped", "topic", p.Topic, "error", err.Error())
		}
		b.out.published(it)
	}
	return nil
}

// greet subscribes on a new connection and publishes "online".
func (b *Bridge) greet(ctx context.Context, c client) error {
	sctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	sub := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		// RetainHandling 2: never send retained commands.
		{Topic: b.prefix + "/command/#", QoS: 1, RetainHandling: 2},
		// Retained statuses, to clear those of resources that are gone;
		// not our own publications.
		{Topic: b.prefix + "/status/#", QoS: 1, NoLocal: true},
	}}
	ack, err := c.Subscribe(sctx, sub)
	if ack != nil {
		for i, rc := range ack.Reasons {
			if rc >= 0x80 && i < len(sub.Subscriptions) {
				return fmt.Errorf("subscribe to %s: %w (reason code %#x)", sub.Subscriptions[i].Topic, errRefused, rc)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	err = b.publish(ctx, c, &paho.Publish{Topic: b.prefix + "/bridge/state", QoS: 1, Retain: true, Payload: []byte("online")})
	if permanent(err) {
		b.log.Info("MQTT publish refused; dropped", "topic", b.prefix+"/bridge/state", "error", err.Error())
		return nil
	}
	return err
}

// errRefused marks a publication the broker refused.
var errRefused = errors.New("refused by the broker")

// permanent reports whether a failed publication would fail again on
// retry: the broker refused it, or the client found it invalid.
func permanent(err error) bool {
	return errors.Is(err, errRefused) || errors.Is(err, paho.ErrInvalidArguments)
}

// publish publishes p with a timeout.
func (b *Bridge) publish(ctx context.Context, c client, p *paho.Publish) error {
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	resp, err := c.Publish(pctx, p)
	if resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("publish %s: %w (reason code %#x)", p.Topic, errRefused, resp.ReasonCode)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", p.Topic, err)
	}
	return nil
}
