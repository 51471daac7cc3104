import { PRIORITY_CLASSES } from '../hub/delivery.js';
import type { Hub } from '../hub/hub.js';
import type { Metrics } from '../observability/metrics.js';
import type { WriterStats } from '../transport/flusher.js';

/** Codec slots (protocol/codec.ts) by name, as the encodes metric labels them. */
const CODEC_NAMES = ['json', 'protobuf', 'uni_json'];

/**
 * Brings the node's gauges and the counters kept outside prom-client (plain
 * numbers on the hot path: the hub's deliveries, the node's writer
 * statistics) up to date; run before each scrape.
 */
export class NodeMetricsCollector {
  private last = { deliveries: 0, bytes: 0, frames: 0 };
  private lastEncodes: number[] = [];
  private readonly lastSent = [0, 0, 0];
  private readonly lastConflated = [0, 0, 0];

  constructor(
    private readonly metrics: Metrics,
    private readonly hub: Hub,
    private readonly writers: WriterStats,
  ) {}

  collect(): void {
    const { metrics: m, hub, writers: w, last } = this;
    m.connections.set(hub.clients.size);
    m.users.set(hub.users.size);
    m.subscriptions.set(hub.numSubscriptions);
    m.channels.set(hub.numChannels);
    m.deliveries.inc(Math.max(0, hub.deliveries - last.deliveries));
    m.bytesOut.inc(Math.max(0, w.bytesOut - last.bytes));
    m.framesOut.inc(Math.max(0, w.framesOut - last.frames));
    this.last = { deliveries: hub.deliveries, bytes: w.bytesOut, frames: w.framesOut };
    hub.encodes.forEach((n, slot) => {
      m.publicationEncodes.labels(CODEC_NAMES[slot] ?? String(slot)).inc(Math.max(0, n - (this.lastEncodes[slot] ?? 0)));
      this.lastEncodes[slot] = n;
    });
    let pending = 0;
    for (const c of hub.clients.values()) pending += c.writer.pendingBytes;
    m.queuePending.set(pending);
    PRIORITY_CLASSES.forEach((name, lane) => {
      m.queueSent.labels(name).inc(Math.max(0, w.sent[lane]! - this.lastSent[lane]!));
      m.queueConflated.labels(name).inc(Math.max(0, w.conflated[lane]! - this.lastConflated[lane]!));
      this.lastSent[lane] = w.sent[lane]!;
      this.lastConflated[lane] = w.conflated[lane]!;
    });
  }
}
