import type { Broker } from '../engine/types.js';
import { SpanKind } from '@opentelemetry/api';
import type { Tracing } from '../observability/tracing.js';

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
