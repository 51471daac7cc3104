import type { Config } from '../config/load.js';
import { MemoryOccupancy } from '../engine/memory/occupancy.js';
import { MemoryOutbox } from '../engine/memory/outbox.js';
import type { Engine } from '../engine/types.js';
import type { Hub, Subscriber } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SubscriberRegistry } from '../session/context.js';
import { WebhookDispatcher } from '../webhooks/dispatcher.js';
import { WebhookEmitter, type EventSubject } from '../webhooks/emitter.js';

export interface NodeWebhooksDeps {
  readonly engine: Engine;
  readonly hub: Hub;
  readonly nodeId: string;
  /** Namespace of a channel (throws for a name no namespace takes). */
  readonly channels: { resolve(channel: string): { readonly namespace: string } };
  readonly metrics: Metrics;
  readonly log: Logger;
}

/**
 * The node's webhooks: the emitter fed from the connection index and the
 * subscriber registry, and the dispatcher that delivers the outbox. Absent
 * (undefined) when no endpoint is configured, so nothing is paid for them.
 */
export class NodeWebhooks {
  private readonly emitter: WebhookEmitter;
  private readonly dispatcher: WebhookDispatcher;
  /** Sessions announced as connected: only they get a disconnect event. */
  private readonly connected = new WeakSet<EventSubject>();

  static create(config: Config, deps: NodeWebhooksDeps): NodeWebhooks | undefined {
    const cfg = config.webhooks;
    if (cfg.endpoints.length === 0) return undefined;
    if (!deps.engine.outbox) deps.log.warn('the engine has no webhook outbox: events are kept in this process only');
    return new NodeWebhooks(config, deps);
  }

  private constructor(
    config: Config,
    private readonly deps: NodeWebhooksDeps,
  ) {
    const cfg = config.webhooks;
    const outbox = deps.engine.outbox ?? new MemoryOutbox();
    this.dispatcher = new WebhookDispatcher(outbox, cfg, deps.nodeId, deps.metrics, deps.log.child({ webhooks: true }));
    this.emitter = new WebhookEmitter({
      cfg,
      outbox,
      occupancy: deps.engine.occupancy ?? new MemoryOccupancy(),
      dispatcher: this.dispatcher,
      node: deps.nodeId,
      namespaceOf: (channel) => {
        try {
          return deps.channels.resolve(channel).namespace;
        } catch {
          return undefined;
        }
      },
      localChannels: () => deps.hub.channelNames(),
      occupancyTtlMs: Math.max(1000, config.engine.redis.node_info_ttl),
      metrics: deps.metrics,
      log: deps.log,
    });
  }

  start(): void {
    this.dispatcher.start();
    this.emitter.start();
  }

  stop(): void {
    this.emitter.stop();
    this.dispatcher.stop();
  }

  sessionConnected(s: EventSubject): void {
    this.connected.add(s);
    this.emitter.connected(s);
  }

  sessionRemoved(s: EventSubject): void {
    if (this.connected.delete(s)) this.emitter.disconnected(s);
  }

  /** The node's subscriber registry with subscribe/unsubscribe and occupancy events on the side. */
  subscribers(inner: SubscriberRegistry): SubscriberRegistry {
    const hub = this.deps.hub;
    return {
      encodes: inner.encodes,
      add: (sub: Subscriber) => {
        const first = !hub.hasSubscribers(sub.channel);
        const p = inner.add(sub);
        this.emitter.subscribed(subject(sub), sub.channel, first && hub.hasSubscribers(sub.channel));
        return p;
      },
      remove: (sub: Subscriber) => {
        const before = hub.numSubscribers(sub.channel);
        inner.remove(sub);
        if (hub.numSubscribers(sub.channel) === before) return; // it was not there
        this.emitter.unsubscribed(subject(sub), sub.channel, !hub.hasSubscribers(sub.channel));
      },
    };
  }
}

function subject(sub: Subscriber): EventSubject {
  return { id: sub.client.id, user: sub.client.user };
}
