import type { Config } from '../config/load.js';
import type { OutboxEntry, WebhookOutbox } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboxRecord, WebhookEvent } from './event.js';
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
  private readonly inFlight = new Map<string, { timer?: NodeJS.Timeout; abort?: AbortController }>();
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
    for (const f of this.inFlight.values()) {
      clearTimeout(f.timer);
      f.abort?.abort();
    }
    this.inFlight.clear();
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
    let type = 'unknown';
    try {
      rec = JSON.parse(entry.body) as OutboxRecord;
      type = (JSON.parse(rec.b) as WebhookEvent).type;
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
    this.attempt(entry.id, endpoint, rec.b, type, 1);
  }

  private attempt(id: string, endpoint: WebhookEndpoint, body: string, type: string, n: number): void {
    const slot = this.inFlight.get(id);
    if (!slot || this.stopped) return;
    const abort = new AbortController();
    slot.abort = abort;
    const timer = setTimeout(() => abort.abort(), Math.max(1, this.cfg.timeout));
    const ts = Math.floor(Date.now() / 1000);
    const secret = endpoint.secret || this.cfg.secret;
    const eventId = (JSON.parse(body) as WebhookEvent).id;
    fetch(endpoint.url, {
      method: 'POST',
      body,
      signal: abort.signal,
      headers: {
        'content-type': 'application/json',
        [WebhookHeaders.signature]: signWebhook(secret, ts, body),
        [WebhookHeaders.timestamp]: String(ts),
        [WebhookHeaders.eventId]: eventId,
        [WebhookHeaders.event]: type,
      },
    })
      .then(
        async (res) => {
          // Read the body so the connection can be reused.
          await res.arrayBuffer().catch(() => undefined);
          return res.ok ? 'ok' : retryable(res.status) ? `status ${res.status}` : `final ${res.status}`;
        },
        (e: unknown) => (abort.signal.aborted && !this.stopped ? 'timeout' : `error ${e instanceof Error ? e.message : String(e)}`),
      )
      .then((outcome) => {
        clearTimeout(timer);
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
        slot.abort = undefined;
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          this.attempt(id, endpoint, body, type, n + 1);
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
