/**
 * A load-generator process (forked by LoadGenerator). Holds up to a few
 * tens of thousands of client connections, counts deliveries and answers the
 * parent's IPC commands. Exits when the parent goes away.
 */
import { createHmac } from 'node:crypto';
import { BENCH_TOKEN_SECRET, type ConnectRequest, type ParentToWorker, type WorkerToParent } from '../types.js';
import { ephemeralPortRange } from '../proc.js';
import { createClient, type BenchClient } from './clients.js';
import { DeliveryStats } from './stats.js';

const stats = new DeliveryStats();
let clients: BenchClient[] = [];
let connectReq: ConnectRequest | undefined;

function send(msg: WorkerToParent): void {
  process.send?.(msg);
}

function errKey(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return String(err.code ?? err.message ?? e).slice(0, 80);
}

/** Run `fn` over items with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners: Promise<void>[] = [];
  for (let r = 0; r < Math.min(concurrency, items.length); r++) {
    runners.push(
      (async () => {
        while (next < items.length) await fn(items[next++]!);
      })(),
    );
  }
  await Promise.all(runners);
}

function openCount(): number {
  let n = 0;
  for (const c of clients) if (c.isOpen()) n++;
  return n;
}

async function openAll(
  list: BenchClient[],
  req: ConnectRequest,
  deadlineMs = Infinity,
): Promise<{ ok: number; failed: number; ms: number; errors: Record<string, number> }> {
  const errors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  await pool(list, req.concurrency, async (c) => {
    if (performance.now() - t0 > deadlineMs) {
      failed++;
      errors['not tried: deadline passed'] = (errors['not tried: deadline passed'] ?? 0) + 1;
      return;
    }
    try {
      await c.open(req.timeoutMs);
      ok++;
    } catch (e) {
      failed++;
      const k = errKey(e);
      errors[k] = (errors[k] ?? 0) + 1;
    }
  });
  return { ok, failed, ms: performance.now() - t0, errors };
}

/**
 * Client i's local port on its source address: distinct for every client of
 * the run (over all workers, since i is the client's global index), from
 * FIRST_LOCAL_PORT up, below the kernel's ephemeral range (32768–60999 here),
 * so the kernel's own connects (the servers' Redis clients, …) never take one.
 * Beyond that: undefined, the kernel picks.
 */
const FIRST_LOCAL_PORT = 10_000;
const EPHEMERAL_LOW = ephemeralPortRange()[0];
function localPortOf(i: number, sources: number): number | undefined {
  const port = FIRST_LOCAL_PORT + Math.floor(i / sources);
  return port < EPHEMERAL_LOW ? port : undefined;
}

/** An HS256 connection token for `user`, valid for a day: a distinct token per connection, as real clients have. */
function connectionToken(user: string): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: user, exp: Math.floor(Date.now() / 1000) + 86_400 })}`;
  return `${body}.${createHmac('sha256', BENCH_TOKEN_SECRET).update(body).digest('base64url')}`;
}

/** Clients made by a 'prepare' for this range, waiting for the 'connect'. */
let prepared: { start: number; end: number } | undefined;

function makeClients(req: ConnectRequest): void {
  clients = [];
  for (let i = req.start; i < req.end; i++) {
    const channels = [...req.plan.shared];
    if (req.plan.personalPrefix !== undefined) channels.push(`${req.plan.personalPrefix}${i}`);
    clients.push(
      createClient(req.kind, {
        url: req.url,
        localAddress: req.sources[i % req.sources.length]!,
        localPort: localPortOf(i, req.sources.length),
        channels,
        stats,
        recoverable: req.recoverable,
        transports: req.transports,
        token: req.kind === 'switchboard' || req.kind === 'switchboard-protobuf' ? connectionToken(`bench-${i}`) : undefined,
      }),
    );
  }
}

async function connect(req: ConnectRequest): Promise<void> {
  connectReq = req;
  if (prepared?.start !== req.start || prepared.end !== req.end) makeClients(req);
  prepared = undefined;
  const r = await openAll(clients, req);
  const subs: Record<string, number> = {};
  for (const c of clients) if (c.isOpen()) for (const st of c.states) subs[st.name] = (subs[st.name] ?? 0) + 1;
  send({ type: 'connected', result: { ...r, subs } });
}

async function dropAndReconnect(timeoutMs: number, deadlineMs: number): Promise<void> {
  const req = connectReq;
  if (!req) throw new Error('drop before connect');
  for (const c of clients) c.drop();
  const r = await openAll(clients, { ...req, timeoutMs }, deadlineMs);
  send({ type: 'dropped', ...r });
}

const progress = setInterval(() => send({ type: 'progress', open: openCount(), unique: stats.unique }), 1000);
progress.unref();

process.on('message', (m: ParentToWorker) => {
  const fail = (e: unknown): void => send({ type: 'error', message: String((e as Error)?.stack ?? e) });
  switch (m.type) {
    case 'connect':
      connect(m).catch(fail);
      break;
    case 'prepare':
      makeClients(m);
      prepared = { start: m.start, end: m.end };
      send({ type: 'prepared' });
      break;
    case 'reset':
      stats.reset();
      send({ type: 'resetDone' });
      break;
    case 'report':
      send({ type: 'report', report: stats.report(openCount()) });
      break;
    case 'drop':
      dropAndReconnect(m.timeoutMs, m.deadlineMs).catch(fail);
      break;
    case 'close':
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 100);
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
