import http from 'node:http';
import { nowMicros } from '../types.js';

/** Per-channel sequence numbers, kept across publishing windows on one system under test. */
export class SeqBook {
  private seq = new Map<string, number>();
  next(channel: string): number {
    const s = (this.seq.get(channel) ?? 0) + 1;
    this.seq.set(channel, s);
    return s;
  }
}

export interface PublishTarget {
  /** e.g. http://127.0.0.1:8000 */
  apiBase: string;
  apiKey?: string;
}

export interface PublishStream {
  /** Channels published to in round-robin order. */
  channels: string[];
  /** Publications per second over all of `channels`. */
  rate: number;
}

export interface PublishResult {
  /** channel → publications the server accepted in this window */
  published: Map<string, number>;
  total: number;
  errors: number;
  errorSample?: string;
  ms: number;
}

const MAX_BATCH = 500;
/**
 * One request at a time: two batches in flight on two sockets may be handled
 * out of order, which subscribers would see as reordered sequence numbers.
 */
const MAX_IN_FLIGHT = 1;

/**
 * Publishes through the HTTP server API (`/api/publish`, `/api/batch`) at
 * fixed rates, batching what is due every tick. Each publication carries its
 * channel sequence number and the send time in µs.
 */
export class Publisher {
  private agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  private pad: string;

  constructor(
    private readonly target: PublishTarget,
    private readonly seqs: SeqBook,
    payloadBytes = 100,
  ) {
    // {"s":123456,"t":1234567890123,"p":""} is ~40 bytes before padding
    this.pad = 'x'.repeat(Math.max(0, payloadBytes - 40));
  }

  private post(path: string, body: string): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.target.apiBase);
    return new Promise((resolve, reject) => {
      const req = http.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...(this.target.apiKey ? { 'x-api-key': this.target.apiKey } : {}),
          },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('publish timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Publish one batch now; returns per-channel accepted counts. */
  async publishBatch(channels: string[], result: PublishResult): Promise<void> {
    const t = nowMicros();
    const cmds = channels.map((channel) => ({ channel, data: { s: this.seqs.next(channel), t, p: this.pad } }));
    try {
      if (cmds.length === 1) {
        const r = await this.post('/api/publish', JSON.stringify(cmds[0]));
        const body = r.status === 200 ? (JSON.parse(r.body) as { error?: unknown }) : undefined;
        if (!body || body.error) throw new Error(`publish: HTTP ${r.status} ${r.body.slice(0, 200)}`);
        this.count(result, cmds[0]!.channel);
      } else {
        const r = await this.post('/api/batch', JSON.stringify({ commands: cmds.map((c) => ({ publish: c })) }));
        if (r.status !== 200) throw new Error(`batch: HTTP ${r.status} ${r.body.slice(0, 200)}`);
        type Replies = { replies?: { error?: unknown }[] };
        const body = JSON.parse(r.body) as Replies & { result?: Replies };
        // Centrifugo answers {"replies":[…]}; accept a {"result":{"replies":[…]}} wrapper too
        const replies = body.replies ?? body.result?.replies ?? [];
        cmds.forEach((c, i) => {
          const rep = replies[i];
          if (rep && !rep.error) this.count(result, c.channel);
          else {
            result.errors++;
            result.errorSample ??= JSON.stringify(rep ?? body).slice(0, 200);
          }
        });
      }
    } catch (e) {
      result.errors += cmds.length;
      result.errorSample ??= String((e as Error).message ?? e);
    }
  }

  private count(result: PublishResult, channel: string): void {
    result.published.set(channel, (result.published.get(channel) ?? 0) + 1);
    result.total++;
  }

  /**
   * Run the given streams for `durationMs`. Ticks every 10 ms; what is due
   * goes out as batches (≤ 500), one request in flight, so a slow server
   * makes batches grow rather than requests pile up.
   */
  async run(streams: PublishStream[], durationMs: number): Promise<PublishResult> {
    const result: PublishResult = { published: new Map(), total: 0, errors: 0, ms: 0 };
    const sent = streams.map(() => 0);
    const cursor = streams.map(() => 0);
    const inFlight = new Set<Promise<void>>();
    const t0 = performance.now();
    for (;;) {
      const elapsed = performance.now() - t0;
      const done = elapsed >= durationMs;
      const at = Math.min(elapsed, durationMs);
      const due: string[] = [];
      streams.forEach((s, i) => {
        const target = Math.floor((s.rate * at) / 1000);
        while (sent[i]! < target && due.length < MAX_BATCH * MAX_IN_FLIGHT) {
          due.push(s.channels[cursor[i]! % s.channels.length]!);
          cursor[i]!++;
          sent[i]!++;
        }
      });
      for (let off = 0; off < due.length; off += MAX_BATCH) {
        while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
        const p = this.publishBatch(due.slice(off, off + MAX_BATCH), result).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (done) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(inFlight);
    result.ms = performance.now() - t0;
    return result;
  }

  close(): void {
    this.agent.destroy();
  }
}
