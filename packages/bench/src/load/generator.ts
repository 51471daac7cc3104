import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { track, stopProcess } from '../proc.js';
import type { ChannelPlan, ClientKind, ConnectRequest, ConnectResult, ParentToWorker, WorkerReport, WorkerToParent } from '../types.js';
import { newHistogram } from './stats.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** Every process may hold at most this many open files; leave room for the runtime's own. */
export const MAX_CONNS_PER_WORKER = 18_000;
/** Source addresses spread over, to get past the ephemeral port range per source address. */
export const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);

export interface LoadOptions {
  kind: ClientKind;
  url: string;
  transports?: string[];
  conns: number;
  plan: ChannelPlan;
  recoverable?: boolean;
  /** Worker processes; default: enough for the fd limit, at least 2 from 1000 conns. */
  workers?: number;
  /** Connection attempts in flight, over all workers (default 400: more only thrashes 2 cores). */
  concurrency?: number;
  timeoutMs?: number;
}

export interface AggregateReport {
  unique: number;
  dup: number;
  gaps: number;
  hist: hdr.Histogram;
  unexpectedCloses: number;
  closeCodes: Record<string, number>;
  openConns: number;
  notRecovered: number;
}

export interface ConnectSummary {
  ok: number;
  failed: number;
  ms: number;
  errors: Record<string, number>;
}

interface Worker {
  proc: ChildProcess;
  waiters: Map<string, ((m: WorkerToParent) => void)[]>;
  open: number;
  unique: number;
}

/** Parent side of the load generator: forks workers, splits connections, aggregates their counters. */
export class LoadGenerator {
  private workers: Worker[] = [];
  /** channel → number of subscribed connections, summed over workers after connect. */
  readonly subs = new Map<string, number>();

  constructor(readonly opts: LoadOptions) {}

  static workersFor(conns: number): number {
    return Math.max(Math.ceil(conns / MAX_CONNS_PER_WORKER), conns >= 1000 ? 2 : 1);
  }

  async start(): Promise<void> {
    const n = this.opts.workers ?? LoadGenerator.workersFor(this.opts.conns);
    const spawned = Array.from({ length: n }, () => this.spawnWorker());
    this.workers = spawned;
    await Promise.all(spawned.map((w) => this.next(w, 'ready', 15_000)));
  }

  private spawnWorker(): Worker {
    const proc = track(
      fork(WORKER, [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        execArgv: ['--max-old-space-size=4096', ...(process.env.BENCH_LOAD_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
      }),
    );
    const w: Worker = { proc, waiters: new Map(), open: 0, unique: 0 };
    proc.on('message', (m: WorkerToParent) => {
      if (m.type === 'progress') {
        w.open = m.open;
        w.unique = m.unique;
        return;
      }
      if (m.type === 'error') process.stderr.write(`\nload worker ${proc.pid}: ${m.message}\n`);
      const q = w.waiters.get(m.type);
      const fn = q?.shift();
      if (fn) fn(m);
    });
    return w;
  }

  private next(w: Worker, type: string, timeoutMs: number): Promise<WorkerToParent> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`load worker ${w.proc.pid}: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      const onExit = (): void => reject(new Error(`load worker ${w.proc.pid} exited while waiting for "${type}"`));
      w.proc.once('exit', onExit);
      const q = w.waiters.get(type) ?? [];
      q.push((m) => {
        clearTimeout(t);
        w.proc.off('exit', onExit);
        resolve(m);
      });
      w.waiters.set(type, q);
    });
  }

  private post(w: Worker, m: ParentToWorker): void {
    w.proc.send(m);
  }

  /** Progress as last pushed by the workers (about once a second). */
  progress(): { open: number; unique: number } {
    return this.workers.reduce((a, w) => ({ open: a.open + w.open, unique: a.unique + w.unique }), { open: 0, unique: 0 });
  }

  /** What worker `i` is asked to make and open. */
  private request(i: number, type: 'connect' | 'prepare'): ConnectRequest {
    const { conns } = this.opts;
    const per = Math.ceil(conns / this.workers.length);
    const start = Math.min(i * per, conns);
    return {
      type,
      kind: this.opts.kind,
      url: this.opts.url,
      transports: this.opts.transports,
      start,
      end: Math.min(start + per, conns),
      plan: this.opts.plan,
      sources: SOURCES,
      concurrency: Math.max(1, Math.ceil((this.opts.concurrency ?? 400) / this.workers.length)),
      timeoutMs: this.opts.timeoutMs ?? 30_000,
      recoverable: this.opts.recoverable ?? false,
    };
  }

  /**
   * Makes the clients (Switchboard's: with their connection tokens) without
   * connecting, so that a measured connect phase counts connecting only: a
   * token is an app backend's work, made before a client connects.
   */
  async prepare(): Promise<void> {
    await Promise.all(
      this.workers.map((w, i) => {
        const p = this.next(w, 'prepared', 60_000);
        this.post(w, this.request(i, 'prepare'));
        return p;
      }),
    );
  }

  async connect(): Promise<ConnectSummary> {
    const t0 = performance.now();
    const results = await Promise.all(
      this.workers.map((w, i) => {
        const req = this.request(i, 'connect');
        this.post(w, req);
        // connecting is bounded by per-connection timeouts; this is a backstop
        return this.next(w, 'connected', req.timeoutMs * Math.ceil((req.end - req.start) / req.concurrency + 2));
      }),
    );
    const ms = performance.now() - t0;
    this.subs.clear();
    const out: ConnectSummary = { ok: 0, failed: 0, ms, errors: {} };
    for (const m of results) {
      const r = (m as { result: ConnectResult }).result;
      out.ok += r.ok;
      out.failed += r.failed;
      for (const [k, v] of Object.entries(r.errors)) out.errors[k] = (out.errors[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.subs)) this.subs.set(k, (this.subs.get(k) ?? 0) + v);
    }
    return out;
  }

  async reset(): Promise<void> {
    await Promise.all(
      this.workers.map((w) => {
        const p = this.next(w, 'resetDone', 10_000);
        this.post(w, { type: 'reset' });
        return p;
      }),
    );
  }

  async report(): Promise<AggregateReport> {
    const reports = await Promise.all(
      this.workers.map((w) => {
        const p = this.next(w, 'report', 30_000);
        this.post(w, { type: 'report' });
        return p.then((m) => (m as { report: WorkerReport }).report);
      }),
    );
    const agg: AggregateReport = {
      unique: 0,
      dup: 0,
      gaps: 0,
      hist: newHistogram(),
      unexpectedCloses: 0,
      closeCodes: {},
      openConns: 0,
      notRecovered: 0,
    };
    for (const r of reports) {
      agg.unique += r.unique;
      agg.dup += r.dup;
      agg.gaps += r.gaps;
      agg.unexpectedCloses += r.unexpectedCloses;
      agg.openConns += r.openConns;
      agg.notRecovered += r.notRecovered;
      for (const [k, v] of Object.entries(r.closeCodes)) agg.closeCodes[k] = (agg.closeCodes[k] ?? 0) + v;
      agg.hist.add(hdr.decodeFromCompressedBase64(r.hist, 32));
    }
    return agg;
  }

  /** Deliveries expected for the given per-channel publish counts, given who is subscribed. */
  expected(published: Map<string, number>): number {
    let n = 0;
    for (const [ch, count] of published) n += count * (this.subs.get(ch) ?? 0);
    return n;
  }

  /**
   * Wait until deliveries reach `expected` or stop growing for `quietMs`
   * (bounded by `maxMs`), then return the aggregate report.
   */
  async drain(expected: number, quietMs = 2000, maxMs = 30_000): Promise<AggregateReport> {
    const t0 = performance.now();
    let last = -1;
    let lastChange = t0;
    for (;;) {
      const r = await this.report();
      const now = performance.now();
      if (r.unique + r.dup !== last) {
        last = r.unique + r.dup;
        lastChange = now;
      }
      if (r.unique >= expected || now - lastChange > quietMs || now - t0 > maxMs) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** Drop every connection at once and reconnect (with recovery where possible). */
  async dropAndReconnect(timeoutMs = 10_000, deadlineMs = 60_000): Promise<ConnectSummary> {
    const t0 = performance.now();
    const results = await Promise.all(
      this.workers.map((w) => {
        const p = this.next(w, 'dropped', deadlineMs + timeoutMs + 30_000);
        this.post(w, { type: 'drop', timeoutMs, deadlineMs });
        return p;
      }),
    );
    const out: ConnectSummary = { ok: 0, failed: 0, ms: performance.now() - t0, errors: {} };
    for (const m of results) {
      const r = m as { ok: number; failed: number; errors: Record<string, number> };
      out.ok += r.ok;
      out.failed += r.failed;
      for (const [k, v] of Object.entries(r.errors)) out.errors[k] = (out.errors[k] ?? 0) + v;
    }
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.proc.connected) {
          try {
            this.post(w, { type: 'close' });
          } catch {
            /* channel closed */
          }
        }
        const exited = new Promise<void>((r) => (w.proc.exitCode !== null ? r() : w.proc.once('exit', () => r())));
        const t = setTimeout(() => void stopProcess(w.proc, 2000), 3000);
        await exited;
        clearTimeout(t);
      }),
    );
    this.workers = [];
  }
}
