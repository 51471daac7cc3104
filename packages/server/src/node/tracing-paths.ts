import { SpanKind } from '@opentelemetry/api';
import type { Broker } from '../engine/types.js';
import type { Hub } from '../hub/hub.js';
import type { Tracing } from '../observability/tracing.js';
import type { Publication } from '../protocol/types.js';

/*
 * The traced versions of the node's paths, chosen once when the node is
 * built: with tracing off the node uses the plain ones and none of this runs.
 */

/** The engine's broker with a span around each publish (child of the API call's or client command's span). */
export function tracedBroker(tracing: Tracing, inner: Broker): Broker {
  return {
    start: (h) => inner.start(h),
    publish: (channel, data, opts) =>
      tracing.run('engine publish', SpanKind.PRODUCER, { 'messaging.destination.name': channel }, () => inner.publish(channel, data, opts)),
    publishJoin: (channel, info) => inner.publishJoin(channel, info),
    publishLeave: (channel, info) => inner.publishLeave(channel, info),
    publishControl: (msg) => inner.publishControl(msg),
    subscribe: (channel) => inner.subscribe(channel),
    unsubscribe: (channel) => inner.unsubscribe(channel),
  };
}

/** Fan-out of one publication on this node: one span per publication (never per subscriber) when tracing is on, the plain call when off. */
export function fanoutHandler(hub: Hub, tracing: Tracing | undefined): (channel: string, pub: Publication) => void {
  if (!tracing) return (ch, pub) => hub.publish(ch, pub);
  return (ch, pub) =>
    tracing.runSync(
      'fanout',
      { 'messaging.destination.name': ch, 'switchboard.offset': pub.offset, 'switchboard.subscribers': hub.numSubscribers(ch) },
      () => hub.publish(ch, pub),
    );
}
