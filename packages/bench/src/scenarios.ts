import { LoadGenerator, MAX_CONNS_PER_WORKER, SOURCES, type AggregateReport, type ConnectSummary } from './load/generator.js';
import { Publisher, SeqBook, type PublishResult, type PublishStream } from './load/publisher.js';
import { ephemeralPortsPerSource, fdLimit, sleep } from './proc.js';
import type { Progress } from './progress.js';
import type { RunningSut, SutOptions, SystemDef } from './sut/systems.js';
import type { ChannelPlan } from './types.js';

export type ScenarioName = 'fanout' | 'many-channels' | 'max-rate' | 'idle' | 'connect-storm' | 'reconnect';

export type ScenarioSpec =
  | { type: 'fanout'; conns: number; rate: number; durationMs: number }
  | { type: 'many-channels'; conns: number; personalRate: number; sharedRate: number; durationMs: number }
  | { type: 'max-rate'; conns: number; startRate: number; factor: number; stepMs: number; maxSteps: number; p99LimitMs: number }
  /** Idle memory; its connect phase is also reported as the connect-storm row. */
  | { type: 'idle'; conns: number; holdMs: number }
  | { type: 'reconnect'; conns: number; rate: number; afterMs: number };

export interface Row {
  system: string;
  scenario: ScenarioName;
  conns: number;
  status: 'ok' | 'n/a' | 'fail';
  note?: string;
  /** publications/s the server accepted */
  pubRate?: number;
  deliveriesPerSec?: number;
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  lost?: number;
  dup?: number;
  cpuPct?: number;
  rssPerConnKB?: number;
  heapPerConnKB?: number;
  connectMs?: number;
  connPerSec?: number;
  reconnectMs?: number;
  /** Bytes the server wrote per delivery (all its socket writes in the window / deliveries). */
  bytesPerDelivery?: number;
  details?: Record<string, unknown>;
}

export interface Ctx {
  progress: Progress;
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

function scenarioOf(spec: ScenarioSpec): ScenarioName {
  return spec.type;
}

/** Why `conns` cannot be held here, or undefined: the per-process fd limit and the ephemeral ports. */
export function wallFor(sys: SystemDef, conns: number): string | undefined {
  const fd = fdLimit();
  const perProcess = fd - 200;
  if (conns > sys.processes * perProcess) return `fd wall: ${conns} conns > ${sys.processes} server process(es) × ${fd} open files`;
  const ports = ephemeralPortsPerSource();
  if (conns > SOURCES.length * ports) return `ephemeral-port wall: ${conns} conns > ${SOURCES.length} source addresses × ${ports} ports`;
  if (conns > 40 * MAX_CONNS_PER_WORKER) return `more than 40 load workers needed`;
  return undefined;
}

interface Session {
  sut: RunningSut;
  load: LoadGenerator;
  pub: Publisher;
  connect: ConnectSummary;
  note?: string;
}

function naRows(sys: SystemDef, spec: ScenarioSpec, status: Row['status'], note: string): Row[] {
  const rows: Row[] = [{ system: sys.name, scenario: scenarioOf(spec), conns: spec.conns, status, note }];
  if (spec.type === 'idle') rows.unshift({ system: sys.name, scenario: 'connect-storm', conns: spec.conns, status, note });
  return rows;
}

function errorsText(errors: Record<string, number>): string {
  return Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, v]) => `${v}× ${k}`)
    .join(', ');
}

/**
 * Start the system, fork the load generator, connect everyone, run `body`,
 * and tear everything down whatever happens. Failures become n/a rows.
 */
async function withSession(
  sys: SystemDef,
  spec: ScenarioSpec,
  ctx: Ctx,
  plan: ChannelPlan,
  sutOpts: SutOptions,
  body: (s: Session) => Promise<Row[]>,
  beforeConnect?: (sut: RunningSut) => Promise<void>,
): Promise<Row[]> {
  const why = sys.unavailable() ?? wallFor(sys, spec.conns);
  if (why) return naRows(sys, spec, 'n/a', why);
  const label = `${sys.name} ${spec.type} ${spec.conns} conns`;
  ctx.progress.set(`${label}: starting server`);
  let sut: RunningSut;
  try {
    sut = await sys.start(sutOpts);
  } catch (e) {
    return naRows(sys, spec, 'n/a', `server did not start: ${String((e as Error).message).slice(0, 300)}`);
  }
  const load = new LoadGenerator({
    kind: sys.kind,
    url: sut.wsUrl,
    transports: sys.transports,
    conns: spec.conns,
    plan,
    recoverable: sutOpts.history === true,
    timeoutMs: 30_000,
  });
  const pub = new Publisher({ apiBase: sut.apiBase, apiKey: sut.apiKey }, new SeqBook());
  try {
    await load.start();
    await beforeConnect?.(sut);
    ctx.progress.set(`${label}: connecting`);
    ctx.progress.start(() => `open ${load.progress().open}`);
    const connect = await load.connect();
    ctx.progress.stop();
    let note: string | undefined;
    if (connect.failed > 0) {
      note = `${connect.failed} connects failed (${errorsText(connect.errors)})`;
      if (connect.ok < spec.conns * 0.5) return naRows(sys, spec, 'fail', note);
    }
    ctx.progress.set(`${label}: running`);
    ctx.progress.start(() => {
      const p = load.progress();
      return `open ${p.open} delivered ${p.unique}`;
    });
    const rows = await body({ sut, load, pub, connect, note });
    if (note) for (const r of rows) r.note = r.note ? `${note}; ${r.note}` : note;
    return rows;
  } catch (e) {
    return naRows(sys, spec, 'fail', `error: ${String((e as Error).message).slice(0, 300)}`);
  } finally {
    ctx.progress.stop();
    pub.close();
    await load.stop();
    await sut.stop();
  }
}

interface Window {
  pub: PublishResult;
  rep: AggregateReport;
  expected: number;
  elapsedMs: number;
  cpuPct: number;
  /** Bytes the server wrote in the window. */
  written?: number;
}

/** Unmeasured publishing so that JIT and buffers settle before the first window. */
async function warmUp(s: Session, streams: PublishStream[], durationMs = 1000): Promise<void> {
  const pub = await s.pub.run(streams, durationMs);
  await s.load.drain(s.load.expected(pub.published), 1000, 5000);
}

/** One measured window: reset counters, publish, drain, collect. */
async function measure(s: Session, streams: PublishStream[], durationMs: number, warmUpMs = 0): Promise<Window> {
  if (warmUpMs > 0) await warmUp(s, streams, warmUpMs);
  await s.load.reset();
  const cpu0 = s.sut.cpu();
  const written0 = s.sut.written();
  const t0 = performance.now();
  const pub = await s.pub.run(streams, durationMs);
  const expected = s.load.expected(pub.published);
  const rep = await s.load.drain(expected, 3000, Math.max(10_000, durationMs));
  const elapsedMs = performance.now() - t0;
  const cpuPct = ((s.sut.cpu() - cpu0) / (elapsedMs / 1000)) * 100;
  return { pub, rep, expected, elapsedMs, cpuPct, written: s.sut.written() - written0 };
}

function latencyFields(rep: AggregateReport): Pick<Row, 'p50Ms' | 'p90Ms' | 'p99Ms' | 'maxMs'> {
  if (rep.hist.totalCount === 0) return {};
  const ms = (us: number): number => round(us / 1000, 2);
  return {
    p50Ms: ms(rep.hist.getValueAtPercentile(50)),
    p90Ms: ms(rep.hist.getValueAtPercentile(90)),
    p99Ms: ms(rep.hist.getValueAtPercentile(99)),
    maxMs: ms(rep.hist.maxValue),
  };
}

function windowRow(sys: SystemDef, scenario: ScenarioName, conns: number, w: Window): Row {
  const lost = Math.max(0, w.expected - w.rep.unique);
  const notes: string[] = [];
  if (w.pub.errors > 0) notes.push(`${w.pub.errors} publish errors (${w.pub.errorSample ?? ''})`);
  if (w.rep.unexpectedCloses > 0)
    notes.push(`${w.rep.unexpectedCloses} conns closed by server (codes ${JSON.stringify(w.rep.closeCodes)})`);
  return {
    system: sys.name,
    scenario,
    conns,
    status: 'ok',
    note: notes.length ? notes.join('; ') : undefined,
    pubRate: round(w.pub.total / (w.pub.ms / 1000)),
    deliveriesPerSec: Math.round(w.rep.unique / (w.elapsedMs / 1000)),
    ...latencyFields(w.rep),
    lost,
    dup: w.rep.dup,
    cpuPct: round(w.cpuPct),
    bytesPerDelivery: w.written !== undefined && w.rep.unique > 0 ? round(w.written / w.rep.unique) : undefined,
    details: { expected: w.expected, delivered: w.rep.unique, gaps: w.rep.gaps, published: w.pub.total, windowMs: Math.round(w.elapsedMs) },
  };
}

async function fanout(sys: SystemDef, spec: Extract<ScenarioSpec, { type: 'fanout' }>, ctx: Ctx): Promise<Row[]> {
  return withSession(sys, spec, ctx, { shared: ['fanout'] }, {}, async (s) => {
    const w = await measure(s, [{ channels: ['fanout'], rate: spec.rate }], spec.durationMs, 1000);
    const row = windowRow(sys, 'fanout', spec.conns, w);
    row.details = { ...row.details, targetRate: spec.rate };
    return [row];
  });
}

async function manyChannels(sys: SystemDef, spec: Extract<ScenarioSpec, { type: 'many-channels' }>, ctx: Ctx): Promise<Row[]> {
  const personal = Array.from({ length: spec.conns }, (_, i) => `user.${i}`);
  return withSession(sys, spec, ctx, { shared: ['shared'], personalPrefix: 'user.' }, {}, async (s) => {
    const w = await measure(
      s,
      [
        { channels: personal, rate: spec.personalRate },
        { channels: ['shared'], rate: spec.sharedRate },
      ],
      spec.durationMs,
      1000,
    );
    const row = windowRow(sys, 'many-channels', spec.conns, w);
    row.details = { ...row.details, personalRate: spec.personalRate, sharedRate: spec.sharedRate };
    return [row];
  });
}

/** Step the publish rate up until p99 passes the limit, or anything is lost. */
async function maxRate(sys: SystemDef, spec: Extract<ScenarioSpec, { type: 'max-rate' }>, ctx: Ctx): Promise<Row[]> {
  return withSession(sys, spec, ctx, { shared: ['maxrate'] }, {}, async (s) => {
    let best: Row | undefined;
    let first: Row | undefined;
    let failReason = `still passing at the last step (${spec.maxSteps} steps)`;
    const steps: Record<string, unknown>[] = [];
    let rate = spec.startRate;
    for (let i = 0; i < spec.maxSteps; i++) {
      ctx.progress.stop();
      ctx.progress.set(`${sys.name} max-rate ${spec.conns} conns: step ${i + 1}/${spec.maxSteps} at ${rate} pubs/s`);
      ctx.progress.start(() => `delivered ${s.load.progress().unique}`);
      const w = await measure(s, [{ channels: ['maxrate'], rate }], spec.stepMs, i === 0 ? 1000 : 0);
      const row = windowRow(sys, 'max-rate', spec.conns, w);
      first ??= row;
      steps.push({
        rate,
        deliveriesPerSec: row.deliveriesPerSec,
        p99Ms: row.p99Ms,
        lost: row.lost,
        dup: row.dup,
        cpuPct: row.cpuPct,
        pubRate: row.pubRate,
      });
      const achieved = (row.pubRate ?? 0) >= rate * 0.9;
      const ok = (row.p99Ms ?? Infinity) <= spec.p99LimitMs && row.lost === 0 && row.dup === 0 && w.pub.errors === 0 && achieved;
      if (!ok) {
        failReason = `at ${rate} pubs/s: p99 ${row.p99Ms ?? '-'} ms, lost ${row.lost}, dup ${row.dup}${achieved ? '' : `, publisher reached only ${row.pubRate}/s`}${row.note ? `, ${row.note}` : ''}`;
        break;
      }
      best = row;
      best.details = { ...best.details, rate };
      rate = Math.ceil(rate * spec.factor);
      // let queues settle between steps
      await sleep(300);
    }
    if (!best) {
      // even the first step fails: show its figures, they are still a measurement
      const row = first!;
      row.note = `below the start rate: ${failReason}`;
      row.details = { ...row.details, steps, p99LimitMs: spec.p99LimitMs, passed: false };
      return [row];
    }
    best.note = `limit: ${failReason}`;
    best.details = { ...best.details, steps, p99LimitMs: spec.p99LimitMs, passed: true };
    return [best];
  });
}

async function idle(sys: SystemDef, spec: Extract<ScenarioSpec, { type: 'idle' }>, ctx: Ctx): Promise<Row[]> {
  let rss0 = 0;
  let heap0: number | undefined;
  let cpu0 = 0;
  return withSession(
    sys,
    spec,
    ctx,
    { shared: ['idle'] },
    {},
    async (s) => {
      const cpuConnect = s.sut.cpu() - cpu0;
      const storm: Row = {
        system: sys.name,
        scenario: 'connect-storm',
        conns: spec.conns,
        status: 'ok',
        connectMs: Math.round(s.connect.ms),
        connPerSec: Math.round(s.connect.ok / (s.connect.ms / 1000)),
        cpuPct: round((cpuConnect / (s.connect.ms / 1000)) * 100),
        details: { ok: s.connect.ok, failed: s.connect.failed },
      };
      await s.load.reset();
      const cpu1 = s.sut.cpu();
      // hold the connections idle; heartbeats keep running
      await sleep(spec.holdMs);
      const cpuIdle = ((s.sut.cpu() - cpu1) / (spec.holdMs / 1000)) * 100;
      const rep = await s.load.report();
      await s.sut.settle();
      const rss1 = s.sut.rss();
      const heap1 = await s.sut.heapUsed();
      const notes: string[] = [];
      if (rep.openConns < s.connect.ok)
        notes.push(`${s.connect.ok - rep.openConns} conns dropped while idle (codes ${JSON.stringify(rep.closeCodes)})`);
      const idleRow: Row = {
        system: sys.name,
        scenario: 'idle',
        conns: spec.conns,
        status: 'ok',
        note: notes.length ? notes.join('; ') : undefined,
        cpuPct: round(cpuIdle),
        rssPerConnKB: round((rss1 - rss0) / s.connect.ok / 1024, 2),
        heapPerConnKB: heap1 !== undefined && heap0 !== undefined ? round((heap1 - heap0) / s.connect.ok / 1024, 2) : undefined,
        details: {
          rssBaseMB: round(rss0 / 2 ** 20),
          rssMB: round(rss1 / 2 ** 20),
          heapBaseMB: heap0 && round(heap0 / 2 ** 20),
          heapMB: heap1 && round(heap1 / 2 ** 20),
          holdMs: spec.holdMs,
          open: rep.openConns,
        },
      };
      return [storm, idleRow];
    },
    async (sut) => {
      await sleep(300);
      await sut.settle();
      heap0 = await sut.heapUsed();
      rss0 = sut.rss();
      cpu0 = sut.cpu();
    },
  );
}

/** Publish steadily, drop every connection, reconnect and recover; nothing may be lost. */
async function reconnect(sys: SystemDef, spec: Extract<ScenarioSpec, { type: 'reconnect' }>, ctx: Ctx): Promise<Row[]> {
  return withSession(sys, spec, ctx, { shared: ['recon'] }, { history: true }, async (s) => {
    await s.load.reset();
    const cpu0 = s.sut.cpu();
    const t0 = performance.now();
    let stop = false;
    const streams = [{ channels: ['recon'], rate: spec.rate }];
    // the publisher runs in 250 ms slices until told to stop, so it spans the storm
    const pubTotal: PublishResult = { published: new Map(), total: 0, errors: 0, ms: 0 };
    const publishing = (async () => {
      for (let i = 0; i < 2400 && !stop; i++) {
        const r = await s.pub.run(streams, 250);
        for (const [k, v] of r.published) pubTotal.published.set(k, (pubTotal.published.get(k) ?? 0) + v);
        pubTotal.total += r.total;
        pubTotal.errors += r.errors;
        pubTotal.errorSample ??= r.errorSample;
        pubTotal.ms += r.ms;
      }
    })();
    try {
      await sleep(1000);
      ctx.progress.stop();
      ctx.progress.set(`${sys.name} reconnect ${spec.conns} conns: storm`);
      ctx.progress.start(() => `open ${s.load.progress().open}`);
      const storm = await s.load.dropAndReconnect(10_000, 45_000);
      await sleep(spec.afterMs);
      stop = true;
      await publishing;
      const expected = s.load.expected(pubTotal.published);
      const rep = await s.load.drain(expected, 2000, 15_000);
      const elapsedMs = performance.now() - t0;
      const w: Window = { pub: pubTotal, rep, expected, elapsedMs, cpuPct: ((s.sut.cpu() - cpu0) / (elapsedMs / 1000)) * 100 };
      const row = windowRow(sys, 'reconnect', spec.conns, w);
      row.reconnectMs = Math.round(storm.ms);
      row.connPerSec = Math.round(storm.ok / (storm.ms / 1000));
      const notes = [row.note];
      if (storm.failed > 0) notes.push(`${storm.failed} reconnects failed (${errorsText(storm.errors)})`);
      if (rep.notRecovered > 0) notes.push(`${rep.notRecovered} subscriptions not recovered`);
      if (sys.kind !== 'switchboard') notes.push('no recovery in this protocol: losses expected');
      row.note = notes.filter(Boolean).join('; ') || undefined;
      row.details = { ...row.details, reconnectOk: storm.ok, reconnectFailed: storm.failed, notRecovered: rep.notRecovered };
      return [row];
    } finally {
      stop = true;
      await publishing;
    }
  });
}

export async function runScenario(sys: SystemDef, spec: ScenarioSpec, ctx: Ctx): Promise<Row[]> {
  switch (spec.type) {
    case 'fanout':
      return fanout(sys, spec, ctx);
    case 'many-channels':
      return manyChannels(sys, spec, ctx);
    case 'max-rate':
      return maxRate(sys, spec, ctx);
    case 'idle':
      return idle(sys, spec, ctx);
    case 'reconnect':
      return reconnect(sys, spec, ctx);
  }
}
