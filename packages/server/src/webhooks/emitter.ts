import { randomUUID } from 'node:crypto';
import type { ChannelOccupancy, WebhookOutbox } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { WebhookDispatcher, WebhookEndpoint, WebhooksConfig } from './dispatcher.js';
import type { OutboxRecord, WebhookEvent, WebhookEventType } from './event.js';

/** Who an event is about. */
export interface EventSubject {
  readonly id: string;
  readonly user: string;
}

export interface WebhookEmitterDeps {
  readonly cfg: WebhooksConfig;
  readonly outbox: WebhookOutbox;
  readonly occupancy: ChannelOccupancy;
  readonly dispatcher: WebhookDispatcher;
  readonly node: string;
  /** The channel's namespace ('' for none), or undefined for a channel name no namespace takes. */
  readonly namespaceOf: (channel: string) => string | undefined;
  /** Channels with subscribers on this node (occupancy refresh). */
  readonly localChannels: () => string[];
  /** How long an occupancy entry lives without a refresh. */
  readonly occupancyTtlMs: number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/**
 * Turns what happens on this node into webhook events in the outbox. Called
 * on the connect and subscribe paths, so it never makes them wait: an append
 * is fired and forgotten, bounded by `max_pending_appends` (beyond, the event
 * is dropped and counted), and the outbox itself is bounded by `outbox_max_size`.
 */
export class WebhookEmitter {
  private pending = 0;
  private readonly wants: Record<WebhookEventType, WebhookEndpoint[]>;
  private readonly occupancyOn: boolean;
  private timer: NodeJS.Timeout | undefined;
  private lastErrorLog = 0;

  constructor(private readonly d: WebhookEmitterDeps) {
    const types: WebhookEventType[] = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'];
    this.wants = Object.fromEntries(types.map((t) => [t, d.cfg.endpoints.filter((e) => e.events.includes(t))])) as Record<
      WebhookEventType,
      WebhookEndpoint[]
    >;
    this.occupancyOn = this.wants.channel_occupied.length + this.wants.channel_vacated.length > 0;
  }

  get wantsSessions(): boolean {
    return this.wants.connect.length + this.wants.disconnect.length > 0;
  }

  start(): void {
    if (!this.occupancyOn) return;
    // Keep this node's occupancy alive, and turn dead nodes' lapsed entries into vacated events.
    this.timer = setInterval(() => this.upkeep(), Math.max(200, Math.floor(this.d.occupancyTtlMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  connected(s: EventSubject): void {
    this.emit('connect', s, undefined);
  }

  disconnected(s: EventSubject): void {
    this.emit('disconnect', s, undefined);
  }

  subscribed(s: EventSubject, channel: string, firstOnNode: boolean): void {
    this.emit('subscribe', s, channel);
    if (firstOnNode && this.occupancyOn && this.channelWanted(channel)) {
      this.d.occupancy.occupy(channel, this.d.node).then(
        (first) => first && this.emit('channel_occupied', undefined, channel),
        (e: unknown) => this.engineError(e),
      );
    }
  }

  unsubscribed(s: EventSubject, channel: string, lastOnNode: boolean): void {
    this.emit('unsubscribe', s, channel);
    if (lastOnNode && this.occupancyOn && this.channelWanted(channel)) {
      this.d.occupancy.vacate(channel, this.d.node).then(
        (last) => last && this.emit('channel_vacated', undefined, channel),
        (e: unknown) => this.engineError(e),
      );
    }
  }

  private channelWanted(channel: string): boolean {
    const ns = this.d.namespaceOf(channel);
    return this.wants.channel_occupied.some((e) => matches(e, ns)) || this.wants.channel_vacated.some((e) => matches(e, ns));
  }

  private upkeep(): void {
    const local = this.d.localChannels().filter((c) => this.channelWanted(c));
    this.d.occupancy.refresh(local, this.d.node).then(
      (again) => {
        for (const ch of again) this.emit('channel_occupied', undefined, ch);
      },
      (e: unknown) => this.engineError(e),
    );
    this.d.occupancy.sweep().then(
      (vacated) => {
        for (const ch of vacated) this.emit('channel_vacated', undefined, ch);
      },
      (e: unknown) => this.engineError(e),
    );
  }

  private emit(type: WebhookEventType, s: EventSubject | undefined, channel: string | undefined): void {
    const endpoints = this.wants[type];
    if (endpoints.length === 0) return;
    const ns = channel === undefined ? undefined : this.d.namespaceOf(channel);
    let body: string | undefined;
    let id = '';
    for (const ep of endpoints) {
      if (channel !== undefined && !matches(ep, ns)) continue;
      if (body === undefined) {
        id = randomUUID();
        const ev: WebhookEvent = { id, type, time: Date.now(), node: this.d.node, client: s?.id, user: s?.user, channel };
        body = JSON.stringify(ev);
      }
      this.append(type, { e: ep.name, i: id, t: type, b: body });
    }
  }

  private append(type: WebhookEventType, rec: OutboxRecord): void {
    const { metrics, cfg } = this.d;
    if (this.pending >= cfg.max_pending_appends) {
      metrics.webhookEvents.labels(type, 'dropped_pending').inc();
      return;
    }
    this.pending++;
    this.d.outbox.append(JSON.stringify(rec), cfg.outbox_max_size).then(
      (ok) => {
        this.pending--;
        metrics.webhookEvents.labels(type, ok ? 'queued' : 'dropped_full').inc();
        if (ok) this.d.dispatcher.wake();
      },
      (e: unknown) => {
        this.pending--;
        metrics.webhookEvents.labels(type, 'dropped_error').inc();
        this.engineError(e);
      },
    );
  }

  private engineError(e: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 60_000) return;
    this.lastErrorLog = now;
    this.d.log.warn({ err: String(e) }, 'webhook event not queued: engine unavailable');
  }
}

function matches(ep: WebhookEndpoint, ns: string | undefined): boolean {
  return ep.namespaces.length === 0 || (ns !== undefined && ep.namespaces.includes(ns));
}
