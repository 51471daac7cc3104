import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the server exports, on a registry of its own (embedding apps keep theirs). */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'switchboard_connections',
    help: 'Open client connections on this node',
    registers: [this.registry],
  });
  readonly users = new Gauge({ name: 'switchboard_users', help: 'Distinct users connected to this node', registers: [this.registry] });
  readonly subscriptions = new Gauge({
    name: 'switchboard_subscriptions',
    help: 'Client subscriptions on this node',
    registers: [this.registry],
  });
  readonly channels = new Gauge({
    name: 'switchboard_channels',
    help: 'Channels with subscribers on this node',
    registers: [this.registry],
  });
  readonly commands: Counter<'method' | 'result'> = new Counter({
    name: 'switchboard_commands_total',
    help: 'Client commands by method and result',
    labelNames: ['method', 'result'] as const,
    registers: [this.registry],
    collect: () => this.flushCommands(),
  });
  readonly commandDuration = new Histogram({
    name: 'switchboard_command_duration_seconds',
    help: 'Client command latency by method',
    labelNames: ['method'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly apiCommands = new Counter({
    name: 'switchboard_api_commands_total',
    help: 'Server API commands by method and result',
    labelNames: ['method', 'result'] as const,
    registers: [this.registry],
  });
  readonly apiDuration = new Histogram({
    name: 'switchboard_api_duration_seconds',
    help: 'Server API latency by method',
    labelNames: ['method'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly publications = new Counter({
    name: 'switchboard_publications_total',
    help: 'Publications accepted by this node (client and API)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'switchboard_deliveries_total',
    help: 'Publications queued to subscribers on this node',
    registers: [this.registry],
  });
  readonly publicationEncodes = new Counter({
    name: 'switchboard_publication_encodes_total',
    help: 'Publication pushes encoded on this node, by encoding (one per publication per encoding in use)',
    labelNames: ['codec'] as const,
    registers: [this.registry],
  });
  readonly bytesIn: Counter = new Counter({
    name: 'switchboard_transport_bytes_in_total',
    help: 'Bytes received from clients',
    registers: [this.registry],
    collect: () => this.flushBytesIn(),
  });
  readonly bytesOut = new Counter({
    name: 'switchboard_transport_bytes_out_total',
    help: 'Bytes written to clients',
    registers: [this.registry],
  });
  readonly framesOut = new Counter({
    name: 'switchboard_transport_frames_out_total',
    help: 'WebSocket frames written to clients',
    registers: [this.registry],
  });
  readonly disconnects = new Counter({
    name: 'switchboard_disconnects_total',
    help: 'Disconnects by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly queueDrops = new Counter({
    name: 'switchboard_queue_drops_total',
    help: 'Connections dropped because their write queue passed client.queue_max_size',
    registers: [this.registry],
  });
  // Priorities and conflation (hub/delivery.ts): class 'high' includes replies to commands.
  readonly queueSent = new Counter({
    name: 'switchboard_queue_messages_sent_total',
    help: 'Messages written to clients, by priority class',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly queuePending = new Gauge({
    name: 'switchboard_queue_pending_bytes',
    help: 'Bytes waiting in connection write queues on this node (summed at scrape)',
    registers: [this.registry],
  });
  readonly queueConflated = new Counter({
    name: 'switchboard_queue_conflated_total',
    help: 'Queued publications replaced by a newer one with the same channel and conflation key, by priority class',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly badInput = new Counter({
    name: 'switchboard_bad_input_total',
    help: 'Malformed or refused input by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly limits = new Counter({
    name: 'switchboard_limit_hits_total',
    help: 'Requests refused by a limit',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly recoveries = new Counter({
    name: 'switchboard_recoveries_total',
    help: 'Subscription recoveries by result',
    labelNames: ['recovered'] as const,
    registers: [this.registry],
  });

  // File transfer (files/, docs/FILES.md).
  readonly fileRequests = new Counter({
    name: 'switchboard_file_requests_total',
    help: 'File transfer requests (tus uploads, downloads) by method and HTTP status',
    labelNames: ['method', 'status'] as const,
    registers: [this.registry],
  });
  readonly fileBytes = new Counter({
    name: 'switchboard_file_bytes_total',
    help: 'File bytes accepted from uploads (in) and sent by downloads (out)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly fileUploads = new Counter({
    name: 'switchboard_file_uploads_completed_total',
    help: 'Uploads completed (and published to their channel)',
    registers: [this.registry],
  });
  readonly fileExpired = new Counter({
    name: 'switchboard_file_uploads_expired_total',
    help: 'Unfinished uploads deleted after files.expire_after',
    registers: [this.registry],
  });
  // Webhooks (docs/WEBHOOKS.md) and tracing (docs/TRACING.md).
  readonly webhookEvents = new Counter({
    name: 'switchboard_webhook_events_total',
    help: 'Webhook events by type and what became of them on the way into the outbox (queued, dropped_full, dropped_pending, dropped_error)',
    labelNames: ['event', 'result'] as const,
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'switchboard_webhook_deliveries_total',
    help: 'Webhook delivery attempts by endpoint and result (ok, retry, failed)',
    labelNames: ['endpoint', 'result'] as const,
    registers: [this.registry],
  });
  readonly webhookOutbox = new Gauge({
    name: 'switchboard_webhook_outbox_size',
    help: 'Undelivered webhook events in the outbox (cluster-wide on Redis), as this node last read it',
    registers: [this.registry],
  });
  readonly webhookInFlight = new Gauge({
    name: 'switchboard_webhook_in_flight',
    help: 'Webhook deliveries this node has in progress or waiting for a retry',
    registers: [this.registry],
  });
  readonly tracingExportFailures = new Counter({
    name: 'switchboard_tracing_export_failures_total',
    help: 'Span batches the OTLP exporter could not deliver',
    registers: [this.registry],
  });

  constructor(defaults = true) {
    // Unprefixed (process_*, nodejs_*), as dashboards for Node services expect.
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }

  // Per-command counts are plain numbers on the hot path, added to the
  // counters when they are read (a scrape, get()): prom-client hashes the
  // labels on every inc, a few µs per command at connect-storm rates.
  private readonly cmdCounts = new Map<string, { method: string; result: string; n: number }>();
  command(method: string, result: string): void {
    const key = method + '|' + result;
    const c = this.cmdCounts.get(key);
    if (c) c.n++;
    else this.cmdCounts.set(key, { method, result, n: 1 });
  }
  private flushCommands(): void {
    for (const c of this.cmdCounts.values()) {
      if (c.n === 0) continue;
      this.commands.inc({ method: c.method, result: c.result }, c.n);
      c.n = 0;
    }
  }

  private pendingBytesIn = 0;
  /** Bytes of a frame received from a client (counted like `command`, added when read). */
  received(bytes: number): void {
    this.pendingBytesIn += bytes;
  }
  private flushBytesIn(): void {
    if (this.pendingBytesIn === 0) return;
    this.bytesIn.inc(this.pendingBytesIn);
    this.pendingBytesIn = 0;
  }
}
