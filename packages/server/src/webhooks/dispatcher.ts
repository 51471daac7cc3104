import { Agent, request } from 'undici';
import type { Config } from '../config/load.js';
import type { OutboxEntry, WebhookOutbox } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboxRecord } from './event.js';
import { WebhookHeaders, signWebhook } from './sign.js';

export type WebhooksConfig = Config['webhooks'];
export type WebhookEndpoint = WebhooksConfig['endpoints'][number];

/** Statuses worth another attempt: the receiver is down, overloaded or timed out. Any other 4xx is final. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** A once-per-minute warning per key, so a receiver that is down does not flood the log. */
class WarnOnce {
  private readonly last = new Map<string, number>();
  constructor(private readonly log: Logger) {}
  warn(key: string, obj: object, msg: string): void {
    const now = Date.now();
    if ((this.last.get(key) ?? 0) > now - 60_000) return;
    this.last.set(key, now);
    this.log.warn(obj, msg);
  }
}

/**
 * Delivers the outbox's events: claims up to `concurrency` at a time (new
 * ones, and those a dead node left), POSTs each signed, acks on 2xx, and
 * retries the others with exponential backoff and jitter up to
 * `max_attempts`. Delivery never blocks anything else: it runs on its own
 * timers, and the only thing that waits for a receiver is its own attempt.
 */
export class WebhookDispatcher {
  private readonly endpoints: Map<string, WebhookEndpoint>;
  /** Outbox id → the attempt in progress or waiting for its retry. */
  private readonly inFlight = new Map<string, { timer?: NodeJS.Timeout }>();
  /**
   * undici's request() on one keep-alive pool per node (not fetch: it costs
   * several times the CPU per delivery); stop() destroys it, which ends the attempts in flight.
   */
  private agent: Agent | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private touchTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private again = false;
  private stopped = true;
  private readonly warn: WarnOnce;

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly cfg: WebhooksConfig,
    private readonly consumer: string,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.endpoints = new Map(cfg.endpoints.map((e) => [e.name, e]));
    this.warn = new WarnOnce(log);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const t = Math.max(1, this.cfg.timeout);
    this.agent = new Agent({ connections: Math.max(1, this.cfg.concurrency), connect: { timeout: t }, headersTimeout: t, bodyTimeout: t });
    this.pollTimer = setInterval(() => this.wake(), Math.max(20, this.cfg.poll_interval));
    this.pollTimer.unref();
    // Entries waiting for a retry stay ours: touched well before reclaim_after lets another node take them.
    this.touchTimer = setInterval(() => this.touch(), Math.max(100, Math.floor(this.cfg.reclaim_after / 3)));
    this.touchTimer.unref();
    this.wake();
  }

  /** Stops claiming and abandons attempts in flight: what was not acked stays in the outbox for the next node. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.touchTimer);
    for (const f of this.inFlight.values()) clearTimeout(f.timer);
    this.inFlight.clear();
    this.agent?.destroy().catch(() => undefined);
    this.agent = undefined;
    this.metrics.webhookInFlight.set(0);
  }

  /** Looks into the outbox now (an event was just queued, or a delivery finished). */
  wake(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    this.polling = true;
    this.poll()
      .catch((e: unknown) => this.warn.warn('claim', { err: String(e) }, 'webhook outbox not readable; retrying'))
      .finally(() => {
        this.polling = false;
        if (this.again) {
          this.again = false;
          setImmediate(() => this.wake());
        }
      });
  }

  private async poll(): Promise<void> {
    const free = this.cfg.concurrency - this.inFlight.size;
    this.metrics.webhookOutbox.set(await this.outbox.size());
    if (free <= 0 || this.stopped) return;
    const entries = await this.outbox.claim(this.consumer, free, this.cfg.reclaim_after);
    for (const e of entries) if (!this.inFlight.has(e.id) && !this.stopped) this.begin(e);
    if (entries.length === free) this.again = true;
  }

  private begin(entry: OutboxEntry): void {
    let rec: OutboxRecord;
    try {
      rec = JSON.parse(entry.body) as OutboxRecord;
      if (typeof rec.b !== 'string' || typeof rec.i !== 'string') throw new Error('not a record');
    } catch {
      this.log.error({ id: entry.id }, 'webhook outbox entry unreadable; dropped');
      this.finish(entry.id);
      return;
    }
    const endpoint = this.endpoints.get(rec.e);
    if (!endpoint) {
      this.warn.warn('endpoint:' + rec.e, { endpoint: rec.e }, 'webhook event for an endpoint no longer configured; dropped');
      this.finish(entry.id);
      return;
    }
    this.inFlight.set(entry.id, {});
    this.metrics.webhookInFlight.set(this.inFlight.size);
    this.attempt(entry.id, endpoint, rec, 1);
  }

  private attempt(id: string, endpoint: WebhookEndpoint, rec: OutboxRecord, n: number): void {
    const slot = this.inFlight.get(id);
    if (!slot || this.stopped || !this.agent) return;
    const ts = Math.floor(Date.now() / 1000);
    const secret = endpoint.secret || this.cfg.secret;
    request(endpoint.url, {
      method: 'POST',
      body: rec.b,
      dispatcher: this.agent,
      headers: {
        'content-type': 'application/json',
        [WebhookHeaders.signature]: signWebhook(secret, ts, rec.b),
        [WebhookHeaders.timestamp]: String(ts),
        [WebhookHeaders.eventId]: rec.i,
        [WebhookHeaders.event]: rec.t,
      },
    })
      .then(
        async (res) => {
          // Drain the answer so the connection is reused.
          await res.body.dump().catch(() => undefined);
          const status = res.statusCode;
          return status >= 200 && status < 300 ? 'ok' : retryable(status) ? `status ${status}` : `final ${status}`;
        },
        (e: unknown) => `error ${e instanceof Error ? ((e as Error & { code?: string }).code ?? e.message) : String(e)}`,
      )
      .then((outcome) => {
        if (this.stopped || !this.inFlight.has(id)) return;
        if (outcome === 'ok') {
          this.metrics.webhookDeliveries.labels(endpoint.name, 'ok').inc();
          this.finish(id);
          return;
        }
        if (outcome.startsWith('final') || n >= this.cfg.max_attempts) {
          this.metrics.webhookDeliveries.labels(endpoint.name, 'failed').inc();
          this.warn.warn('failed:' + endpoint.name, { endpoint: endpoint.name, outcome, attempts: n }, 'webhook delivery given up');
          this.finish(id);
          return;
        }
        this.metrics.webhookDeliveries.labels(endpoint.name, 'retry').inc();
        this.warn.warn('retry:' + endpoint.name, { endpoint: endpoint.name, outcome }, 'webhook delivery failed; retrying with backoff');
        const base = Math.min(this.cfg.retry_max_delay, this.cfg.retry_min_delay * 2 ** (n - 1));
        const delay = Math.max(1, Math.round(base / 2 + (Math.random() * base) / 2));
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          this.attempt(id, endpoint, rec, n + 1);
        }, delay);
        slot.timer.unref();
      });
  }

  /** Delivered or given up: out of the outbox, and room for the next. */
  private finish(id: string): void {
    this.inFlight.delete(id);
    this.metrics.webhookInFlight.set(this.inFlight.size);
    this.outbox.ack([id]).then(
      () => this.wake(),
      (e: unknown) => this.warn.warn('ack', { err: String(e) }, 'webhook ack failed; the event may be delivered again'),
    );
  }

  private touch(): void {
    if (this.inFlight.size === 0) return;
    this.outbox
      .touch(this.consumer, [...this.inFlight.keys()])
      .catch((e: unknown) => this.warn.warn('touch', { err: String(e) }, 'webhook outbox touch failed'));
  }
}
