#!/usr/bin/env node
/**
 * `npm run capacity -w @switchboard/bench [-- --rounds 3 --conns 5000 --fan-conns 2000]`
 *
 * The capacity model of docs/SCALING.md ("Capacity model"): what one
 * connection, subscription, delivery, publish and history entry costs a
 * Switchboard node (and Redis), measured with real sockets against the real
 * server (packages/server/dist) and, where a ratio makes sense, against the
 * raw `ws` peer in the same run. Costs are CPU time of the processes
 * (/proc/<pid>/stat), not wall clock, so they hold up on a busy machine
 * better than rates do; the 1-minute load average is printed next to each.
 * Prints two markdown sections: the measured table and the 1M-connection
 * estimate computed from it (workload flags below).
 *
 * `--tiny` runs every step at toy size (the bench smoke test does, so the
 * script cannot rot); its numbers mean nothing.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LoadGenerator } from './load/generator.js';
import { SeqBook } from './load/publisher.js';
import { cpuSeconds, descendants, installExitHooks, sleep } from './proc.js';
import { systemByName, type RunningSut, type SutOptions } from './sut/systems.js';
import { nowMicros, type BenchPayload, type ChannelPlan } from './types.js';

export interface CapacityOptions {
  /** Connections per memory/connect session. */
  conns: number;
  /** Subscribers of the one channel in the delivery sessions. */
  fanConns: number;
  /** Publications of each delivery window. */
  fanPubs: number;
  /** Publications per engine-publish window (history on). */
  publishes: number;
  /** Bytes of each publication's data in the publish/history windows. */
  payload: number;
  /** Extra shared channels per connection in the subscription session. */
  extraSubs: number;
  /** Raw Redis PUB/SUB listeners in the Redis fan-out-to-nodes window. */
  listeners: number;
  rounds: number;
  /** Print progress on stderr. */
  verbose: boolean;
}

export const FULL: CapacityOptions = {
  conns: 3000,
  fanConns: 1000,
  fanPubs: 300,
  publishes: 20_000,
  payload: 100,
  extraSubs: 10,
  listeners: 20,
  rounds: 1,
  verbose: true,
};

export const TINY: CapacityOptions = {
  conns: 40,
  fanConns: 20,
  fanPubs: 10,
  publishes: 300,
  payload: 100,
  extraSubs: 2,
  listeners: 2,
  rounds: 1,
  verbose: false,
};

/** One measured figure, keyed for the model; `load` = 1-minute load average when it was taken. */
export interface Figure {
  value: number;
  load: number;
}

export type Key =
  | 'connect.raw'
  | 'connect.json'
  | 'connect.protobuf'
  | 'subscribe.extra'
  | 'mem.conn.raw'
  | 'mem.conn.json'
  | 'mem.conn.protobuf'
  | 'heap.conn.raw'
  | 'heap.conn.json'
  | 'heap.conn.protobuf'
  | 'mem.node.base'
  | 'mem.sub.shared'
  | 'mem.sub.own'
  | 'delivery.raw'
  | 'delivery.json'
  | 'delivery.json.coalesced'
  | 'delivery.protobuf'
  | 'delivery.redis'
  | 'publish.memory'
  | 'publish.memory.single'
  | 'publish.redis'
  | 'publish.redis.server'
  | 'receive.memory'
  | 'receive.redis'
  | 'redis.per.listener'
  | 'history.memory'
  | 'history.redis'
  | 'history.memory.channel'
  | 'history.redis.channel';

/** Checks a run can make without timing anything (the smoke test asserts them). */
export interface Checks {
  /** Per delivery window: publications × subscribers expected, and what arrived once. */
  deliveries: { system: string; expected: number; delivered: number; dup: number }[];
  /** Connections that failed to connect, over all sessions. */
  connectFailures: number;
  /** Redis stream length of the history channel after the publish window, and what was published. */
  redisStream?: { length: number; published: number };
  /** PUB/SUB messages the raw listeners received, and what was expected. */
  listenerMessages?: { got: number; expected: number };
}

export interface CapacityResult {
  figures: Partial<Record<Key, Figure>>;
  checks: Checks;
}

type Log = (s: string) => void;

const fig = (value: number): Figure => ({ value, load: loadavg()[0]! });

// ---------------------------------------------------------------- Redis side

/** The redis-server this harness started for the running system (the bench starts one per Redis system). */
function redisOfHarness(): { pid: number; port: number } | undefined {
  for (const pid of descendants(process.pid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'redis-server') continue;
      // redis-server rewrites its title to "redis-server 127.0.0.1:PORT"; before that it is "… --port PORT …"
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const m = /:(\d+)\b/.exec(cmd) ?? /--port (\d+)/.exec(cmd);
      if (m) return { pid, port: Number(m[1]) };
    } catch {
      /* raced with exit */
    }
  }
  return undefined;
}

function resp(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** One command on a fresh connection; returns the reply's payload (bulk string, status or integer) as text. */
function redisCommand(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('error', reject);
    sock.on('connect', () => sock.write(resp(args)));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(0, eol).toString();
      let out: string | undefined;
      if (head[0] === '$') {
        const len = Number(head.slice(1));
        if (buf.length >= eol + 2 + len) out = buf.subarray(eol + 2, eol + 2 + len).toString();
      } else if (head[0] === '-') {
        sock.destroy();
        reject(new Error(`redis: ${head.slice(1)}`));
        return;
      } else out = head.slice(1);
      if (out !== undefined) {
        sock.destroy();
        resolve(out);
      }
    });
  });
}

async function redisUsedMemory(port: number): Promise<number> {
  const info = await redisCommand(port, ['INFO', 'memory']);
  const m = /^used_memory:(\d+)/m.exec(info);
  if (!m) throw new Error('INFO memory without used_memory');
  return Number(m[1]);
}

/** `n` plain Redis connections SUBSCRIBEd to `channel`, counting the messages they get: stand-ins for other nodes. */
async function redisListeners(port: number, channel: string, n: number): Promise<{ count: () => number; close: () => void }> {
  let messages = 0;
  const socks: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = tcpConnect(port, '127.0.0.1');
          socks.push(s);
          let subscribed = false;
          let tail = '';
          s.on('error', reject);
          s.on('connect', () => s.write(resp(['SUBSCRIBE', channel])));
          s.on('data', (d: Buffer) => {
            // count "message" pushes by their marker; a frame boundary may split one, so keep a tail
            const text = tail + d.toString('latin1');
            const marker = '$7\r\nmessage\r\n';
            let i = text.indexOf(marker);
            while (i >= 0) {
              messages++;
              i = text.indexOf(marker, i + marker.length);
            }
            tail = text.slice(-(marker.length - 1));
            if (!subscribed && text.includes('subscribe')) {
              subscribed = true;
              resolve();
            }
          });
        }),
    ),
  );
  return { count: () => messages, close: () => socks.forEach((s) => s.destroy()) };
}

const WORKLOAD_USER_HISTORY = 10;

// ---------------------------------------------------------------- sessions

interface Session {
  sut: RunningSut;
  load?: LoadGenerator;
  /** Per-channel sequences of what this session published (the subscribers count by them). */
  seqs: SeqBook;
  /** Server CPU seconds the connect phase took, and how many connected. */
  connectCpu: number;
  connected: number;
  rss0: number;
  heap0: number | undefined;
  redis?: { pid: number; port: number };
}

/** Start `system`, read its settled memory, connect `conns` clients with `plan`, run `body`, tear down. */
async function session<T>(
  system: string,
  sutOpts: SutOptions,
  conns: number,
  plan: ChannelPlan,
  checks: Checks,
  body: (s: Session) => Promise<T>,
): Promise<T> {
  const sys = systemByName(system);
  const why = sys.unavailable();
  if (why) throw new Error(`${system}: ${why}`);
  const sut = await sys.start(sutOpts);
  let load: LoadGenerator | undefined;
  try {
    await sleep(300);
    await sut.settle();
    const s: Session = {
      sut,
      seqs: new SeqBook(),
      connectCpu: 0,
      connected: 0,
      rss0: sut.rss(),
      heap0: await sut.heapUsed(),
      redis: redisOfHarness(),
    };
    if (conns > 0) {
      load = new LoadGenerator({ kind: sys.kind, url: sut.wsUrl, conns, plan, timeoutMs: 30_000 });
      await load.start();
      const cpu0 = sut.cpu();
      const c = await load.connect();
      s.connectCpu = sut.cpu() - cpu0;
      s.connected = c.ok;
      checks.connectFailures += c.failed;
      if (c.ok === 0) throw new Error(`${system}: no connection succeeded (${JSON.stringify(c.errors)})`);
      s.load = load;
    }
    return await body(s);
  } finally {
    await load?.stop();
    await sut.stop();
  }
}

/** Memory after a full GC in the server: RSS of its process tree and V8 heap. */
async function settledMemory(sut: RunningSut): Promise<{ rss: number; heap: number | undefined }> {
  await sleep(500);
  await sut.settle();
  return { rss: sut.rss(), heap: await sut.heapUsed() };
}

// ---------------------------------------------------------------- measurements

/** Memory and connect CPU: `conns` idle connections with one subscription each, per system; then more subscriptions. */
async function connections(o: CapacityOptions, checks: Checks, log: Log): Promise<CapacityResult['figures']> {
  const out: CapacityResult['figures'] = {};
  const perConn = async (system: string, plan: ChannelPlan): Promise<{ cpuUs: number; rss: number; heap?: number; base: number }> =>
    session(system, {}, o.conns, plan, checks, async (s) => {
      const m = await settledMemory(s.sut);
      return {
        cpuUs: (s.connectCpu / s.connected) * 1e6,
        rss: (m.rss - s.rss0) / s.connected,
        heap: m.heap !== undefined && s.heap0 !== undefined ? (m.heap - s.heap0) / s.connected : undefined,
        base: s.rss0,
      };
    });
  const one: ChannelPlan = { shared: ['idle'] };
  for (const [system, name] of [
    ['raw-ws', 'raw'],
    ['switchboard', 'json'],
    ['switchboard-protobuf', 'protobuf'],
  ] as const) {
    log(`connections: ${system}, ${o.conns} conns × 1 subscription`);
    const r = await perConn(system, one);
    out[`connect.${name}`] = fig(r.cpuUs);
    out[`mem.conn.${name}`] = fig(r.rss);
    if (r.heap !== undefined) out[`heap.conn.${name}`] = fig(r.heap);
    if (name === 'json') out['mem.node.base'] = fig(r.base);
  }
  const base = { cpu: out['connect.json']!.value, heap: out['heap.conn.json']?.value ?? out['mem.conn.json']!.value };
  log(`connections: switchboard, ${o.conns} conns × ${1 + o.extraSubs} subscriptions (shared channels)`);
  const shared = Array.from({ length: o.extraSubs }, (_, i) => `room.${i}`);
  const many = await perConn('switchboard', { shared: ['idle', ...shared] });
  out['subscribe.extra'] = fig((many.cpuUs - base.cpu) / o.extraSubs);
  out['mem.sub.shared'] = fig(((many.heap ?? many.rss) - base.heap) / o.extraSubs);
  log(`connections: switchboard, ${o.conns} conns × (1 shared + 1 own channel)`);
  const own = await perConn('switchboard', { shared: ['idle'], personalPrefix: 'user.' });
  out['mem.sub.own'] = fig((own.heap ?? own.rss) - base.heap);
  return out;
}

/** Server CPU for `n` publications to `channel`, `per` to an API request, until every delivery arrived. */
async function window(
  s: Session,
  channel: string,
  n: number,
  per: number,
  payload: number,
): Promise<{ cpu: number; expected: number; delivered: number; dup: number }> {
  await s.load?.reset();
  const cpu0 = s.sut.cpu();
  await publishBatches(s, channel, n, payload, per);
  const expected = n * (s.load?.subs.get(channel) ?? 0);
  const rep = s.load && expected > 0 ? await s.load.drain(expected, 3000, 60_000) : undefined;
  return { cpu: s.sut.cpu() - cpu0, expected, delivered: rep?.unique ?? 0, dup: rep?.dup ?? 0 };
}

/**
 * CPU per delivery: `fanConns` subscribers of one channel; `fanPubs`
 * publications, one per API request (so each leaves in a write of its own,
 * as at low rates per channel), once to a channel nobody is subscribed to
 * (what publishing alone costs) and once to theirs; the difference over the
 * deliveries. For JSON also with 10 publications per request: the writes of
 * one event-loop turn leave together, which is what a busy channel gets.
 */
async function deliveries(o: CapacityOptions, checks: Checks, log: Log): Promise<CapacityResult['figures']> {
  const out: CapacityResult['figures'] = {};
  for (const [system, name, per] of [
    ['raw-ws', 'raw', 1],
    ['switchboard', 'json', 1],
    ['switchboard', 'json.coalesced', 10],
    ['switchboard-protobuf', 'protobuf', 1],
    ['switchboard-redis', 'redis', 1],
  ] as const) {
    log(`deliveries: ${system}, ${o.fanConns} subscribers, ${o.fanPubs} publications, ${per} per request`);
    out[`delivery.${name}`] = await session(system, {}, o.fanConns, { shared: ['fan'] }, checks, async (s) => {
      await window(s, 'fan', Math.ceil(o.fanPubs / 5), per, o.payload); // warm-up: JIT, buffers
      const alone = await window(s, 'nobody', o.fanPubs, per, o.payload);
      const fan = await window(s, 'fan', o.fanPubs, per, o.payload);
      checks.deliveries.push({ system: `${system}, ${per} per request`, expected: fan.expected, delivered: fan.delivered, dup: fan.dup });
      return fig(((fan.cpu - alone.cpu) / fan.delivered) * 1e6);
    });
  }
  return out;
}

async function postJson(s: Session, path: string, body: string): Promise<void> {
  const r = await fetch(`${s.sut.apiBase}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': s.sut.apiKey ?? '' },
    body,
  });
  const text = await r.text();
  if (r.status !== 200 || text.includes('"error"')) throw new Error(`${path}: HTTP ${r.status} ${text.slice(0, 200)}`);
}

/** Bench payload (sequence, send time) padded to about `bytes` of JSON. */
function payloadOf(seq: number, bytes: number): BenchPayload {
  const d: BenchPayload = { s: seq, t: nowMicros(), p: '' };
  d.p = 'x'.repeat(Math.max(0, bytes - JSON.stringify(d).length));
  return d;
}

/**
 * `n` publications of `payload` bytes, `per` to a request (1: /api/publish,
 * more: /api/batch), one request at a time; channel(i) names the channel of
 * the i-th (0-based).
 */
async function publishBatches(s: Session, channel: string | ((i: number) => string), n: number, payload: number, per = 100): Promise<void> {
  const name = typeof channel === 'string' ? () => channel : channel;
  for (let done = 0; done < n;) {
    const k = Math.min(per, n - done);
    const commands = Array.from({ length: k }, (_, j) => {
      const ch = name(done + j);
      return { publish: { channel: ch, data: payloadOf(s.seqs.next(ch), payload) } };
    });
    if (per === 1) await postJson(s, '/api/publish', JSON.stringify(commands[0]!.publish));
    else await postJson(s, '/api/batch', JSON.stringify({ commands }));
    done += k;
  }
}

/** CPU of the node (and Redis) for `fn`. */
async function cpuOf(s: Session, fn: () => Promise<void>): Promise<{ node: number; redis: number }> {
  const c0 = s.sut.cpu();
  const r0 = s.redis ? cpuSeconds(s.redis.pid) : 0;
  await fn();
  return { node: s.sut.cpu() - c0, redis: s.redis ? cpuSeconds(s.redis.pid) - r0 : 0 };
}

/** Namespace of the many-channels window: a history the size of the model's own channels. */
const SMALL = { name: 'small', history_size: WORKLOAD_USER_HISTORY, history_ttl: '600s' };

/**
 * Engine publish and history entry, memory and Redis engines, history on:
 * `publishes` publications into one channel nobody subscribes to (CPU per
 * publish, then memory per history entry); the same count of publications
 * to a channel with one local subscriber (what receiving a publication and
 * delivering it once adds); for Redis, the same with raw PUB/SUB listeners
 * (what each further node subscribed to a channel costs Redis per publish).
 */
async function engines(o: CapacityOptions, checks: Checks, log: Log): Promise<CapacityResult['figures']> {
  const out: CapacityResult['figures'] = {};
  const n = o.publishes;
  for (const [system, name] of [
    ['switchboard', 'memory'],
    ['switchboard-redis', 'redis'],
  ] as const) {
    log(`engine: ${system}, ${n} publishes of ${o.payload} B with history`);
    await session(system, { history: true, namespaces: [SMALL] }, 1, { shared: ['one'] }, checks, async (s) => {
      await publishBatches(s, 'warm', Math.min(n, 2000), o.payload);
      const used0 = s.redis ? await redisUsedMemory(s.redis.port) : 0;
      const m0 = await settledMemory(s.sut);
      const hist = await cpuOf(s, () => publishBatches(s, 'hist', n, o.payload));
      out[`publish.${name}`] = fig((hist.node / n) * 1e6);
      if (s.redis) out['publish.redis.server'] = fig((hist.redis / n) * 1e6);
      const m1 = await settledMemory(s.sut);
      if (s.redis) {
        out['history.redis'] = fig(((await redisUsedMemory(s.redis.port)) - used0) / n);
        const length = Number(await redisCommand(s.redis.port, ['XLEN', 'switchboard.s.{hist}']).catch(() => 'NaN'));
        checks.redisStream = { length, published: n };
      } else if (m1.heap !== undefined && m0.heap !== undefined) out['history.memory'] = fig((m1.heap - m0.heap) / n);
      // one local subscriber: the node receives each publication (over PUB/SUB for Redis) and delivers it once
      await s.load!.reset();
      let rep: Awaited<ReturnType<LoadGenerator['drain']>> | undefined;
      const one = await cpuOf(s, async () => {
        await publishBatches(s, 'one', n, o.payload);
        rep = await s.load!.drain(n, 3000, 60_000); // the last publications may still be on their way over PUB/SUB
      });
      if (!rep) throw new Error('no report');
      checks.deliveries.push({ system: `${system}, 1 subscriber`, expected: n, delivered: rep.unique, dup: rep.dup });
      out[`receive.${name}`] = fig(((one.node - hist.node) / n) * 1e6);
      // many channels with one publication each: what a channel's history costs beyond its entries
      const k = Math.max(1, Math.floor(n / 10));
      const used1 = s.redis ? await redisUsedMemory(s.redis.port) : 0;
      const m2 = await settledMemory(s.sut);
      await publishBatches(s, (i) => `${SMALL.name}:h1.${i}`, k, o.payload);
      const m3 = await settledMemory(s.sut);
      if (s.redis) out['history.redis.channel'] = fig(((await redisUsedMemory(s.redis.port)) - used1) / k);
      else if (m3.heap !== undefined && m2.heap !== undefined) out['history.memory.channel'] = fig((m3.heap - m2.heap) / k);
      if (name === 'memory') {
        const single = await cpuOf(s, () => publishBatches(s, 'single', k, o.payload, 1));
        out['publish.memory.single'] = fig((single.node / k) * 1e6);
      }
      if (s.redis) {
        const quiet = await cpuOf(s, () => publishBatches(s, 'ps.0', n, o.payload));
        const listeners = await redisListeners(s.redis.port, 'switchboard.c.ps.n', o.listeners);
        try {
          const loud = await cpuOf(s, async () => {
            await publishBatches(s, 'ps.n', n, o.payload);
            const deadline = Date.now() + 10_000;
            while (listeners.count() < n * o.listeners && Date.now() < deadline) await sleep(50);
          });
          checks.listenerMessages = { got: listeners.count(), expected: n * o.listeners };
          out['redis.per.listener'] = fig(((loud.redis - quiet.redis) / n / o.listeners) * 1e6);
        } finally {
          listeners.close();
        }
      }
    });
  }
  return out;
}

export async function measureCapacity(o: CapacityOptions, log: Log = () => {}): Promise<CapacityResult> {
  const rounds: CapacityResult['figures'][] = [];
  const checks: Checks = { deliveries: [], connectFailures: 0 };
  for (let r = 0; r < o.rounds; r++) {
    const tag = o.rounds > 1 ? `round ${r + 1}/${o.rounds}: ` : '';
    const l: Log = (s) => log(tag + s);
    rounds.push({ ...(await connections(o, checks, l)), ...(await deliveries(o, checks, l)), ...(await engines(o, checks, l)) });
  }
  // median per figure over the rounds, with the load of the round it came from
  const figures: CapacityResult['figures'] = {};
  for (const key of new Set(rounds.flatMap((r) => Object.keys(r) as Key[]))) {
    const xs = rounds.map((r) => r[key]).filter((x): x is Figure => x !== undefined);
    xs.sort((a, b) => a.value - b.value);
    figures[key] = xs[Math.floor((xs.length - 1) / 2)]!;
  }
  return { figures, checks };
}

// ---------------------------------------------------------------- the 1M model

/** The workload the estimate assumes (flags `--m-*`). */
export interface Workload {
  conns: number;
  /** Shared channels ("rooms"); each connection is in one, so fan-out = conns / rooms. */
  rooms: number;
  /** Publications/s per room. */
  roomRate: number;
  /** Publications/s per connection's own channel (each connection also subscribes to one). */
  userRate: number;
  roomHistory: number;
  userHistory: number;
  /** Connections one node process holds (≤ 20,000 open files per process here). */
  perProcess: number;
  /** Seconds in which every connection reconnects (a full storm). */
  stormSeconds: number;
  /** Share of one core a node or a Redis may use in steady state. */
  cpuTarget: number;
  /** Memory one Redis shard may hold, GB. */
  redisGb: number;
  /** client.ping_interval, seconds. */
  pingSeconds: number;
}

export const WORKLOAD: Workload = {
  conns: 1_000_000,
  rooms: 10_000,
  roomRate: 1,
  userRate: 0.01,
  roomHistory: 100,
  userHistory: WORKLOAD_USER_HISTORY,
  perProcess: 15_000,
  stormSeconds: 60,
  cpuTarget: 0.6,
  redisGb: 8,
  pingSeconds: 25,
};

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const num = (x: number, d = 1): string => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const kb = (b: number): string => `${num(b / 1024, 2)} KB`;

function value(f: CapacityResult['figures'], k: Key): number {
  const v = f[k]?.value;
  if (v === undefined || !Number.isFinite(v)) throw new Error(`figure ${k} was not measured`);
  return v;
}

/** The 1M estimate as markdown, every number derived from `f` and `w` with the arithmetic shown. */
export function renderModel(f: CapacityResult['figures'], w: Workload): string {
  const fan = w.conns / w.rooms;
  const roomPubs = w.rooms * w.roomRate;
  const userPubs = w.conns * w.userRate;
  const pubs = roomPubs + userPubs;
  const deliveries = roomPubs * fan + userPubs;
  const pings = w.conns / w.pingSeconds;
  const dUs = value(f, 'delivery.json');
  const pubUs = value(f, 'publish.redis');
  // receiving a publication over PUB/SUB, without its one delivery
  const recvUs = Math.max(0, value(f, 'receive.redis') - dUs);
  const fixed = deliveries * dUs + pings * 2 * dUs + pubs * pubUs; // µs/s, whatever the node count
  // nodes a room's publication reaches depends on the node count, which depends on the CPU: iterate
  let nodes = Math.ceil(w.conns / w.perProcess);
  let reach = 0;
  let nodeCpu = 0;
  for (let i = 0; i < 20; i++) {
    reach = nodes * (1 - (1 - 1 / nodes) ** fan);
    nodeCpu = (fixed + (roomPubs * reach + userPubs) * recvUs) / 1e6;
    const need = Math.max(Math.ceil(w.conns / w.perProcess), Math.ceil(nodeCpu / w.cpuTarget));
    if (need === nodes) break;
    nodes = need;
  }
  const pubsubMsgs = roomPubs * reach + userPubs;
  const stormCps = w.conns / w.stormSeconds;
  const stormCpu = (stormCps * value(f, 'connect.json')) / 1e6;
  const connMem = value(f, 'mem.conn.json') + Math.max(0, value(f, 'mem.sub.own'));
  const nodeMem = w.conns * connMem + nodes * value(f, 'mem.node.base');
  const redisCpu = (pubs * value(f, 'publish.redis.server') + pubsubMsgs * Math.max(0, value(f, 'redis.per.listener'))) / 1e6;
  const entries = w.rooms * w.roomHistory + w.conns * w.userHistory;
  const channels = w.rooms + w.conns;
  const perEntry = value(f, 'history.redis');
  const perChannel = Math.max(0, value(f, 'history.redis.channel') - perEntry);
  const redisMem = entries * perEntry + channels * perChannel;
  const shardsCpu = Math.ceil(redisCpu / w.cpuTarget);
  const shardsMem = Math.ceil(redisMem / (w.redisGb * 1e9));
  const cores = Math.ceil(nodeCpu / w.cpuTarget);
  const L: string[] = [];
  L.push(
    `Workload: ${int(w.conns)} JSON WebSocket connections; each subscribes to one of ${int(w.rooms)} rooms (fan-out ${int(fan)}) and to its own channel; ` +
      `${w.roomRate} publication/s per room, ${w.userRate} per own channel; ${w.roomHistory} history entries per room, ${w.userHistory} per own channel; ` +
      `payload ${'≈'}100 B; Redis engine, client-side sharding; ping every ${w.pingSeconds} s; nodes and Redis kept under ${w.cpuTarget * 100}% of a core.`,
  );
  L.push('');
  L.push('| quantity | arithmetic | result |');
  L.push('|---|---|---|');
  L.push(`| publications/s (API → engine) | ${int(w.rooms)} × ${w.roomRate} + ${int(w.conns)} × ${w.userRate} | ${int(pubs)} |`);
  L.push(`| deliveries/s | ${int(roomPubs)} × ${int(fan)} + ${int(userPubs)} × 1 | ${int(deliveries)} |`);
  L.push(
    `| node processes (by open files) | ${int(w.conns)} / ${int(w.perProcess)} per process | ${int(Math.ceil(w.conns / w.perProcess))} |`,
  );
  L.push(`| nodes a room publication reaches | n × (1 − (1 − 1/n)^${int(fan)}), n = ${nodes} | ${num(reach)} |`);
  L.push(`| PUB/SUB messages/s Redis → nodes | ${int(roomPubs)} × ${num(reach)} + ${int(userPubs)} | ${int(pubsubMsgs)} |`);
  L.push(
    `| node CPU, deliveries | ${int(deliveries)} × ${num(dUs, 2)} µs | ${num((deliveries * dUs) / 1e6, 2)} cores |`,
    `| node CPU, pings (≈ 2 deliveries each, not measured apart) | ${int(pings)}/s × 2 × ${num(dUs, 2)} µs | ${num((pings * 2 * dUs) / 1e6, 2)} cores |`,
    `| node CPU, API publishes | ${int(pubs)} × ${num(pubUs, 1)} µs | ${num((pubs * pubUs) / 1e6, 2)} cores |`,
    `| node CPU, receiving over PUB/SUB | ${int(pubsubMsgs)} × ${num(recvUs, 1)} µs | ${num((pubsubMsgs * recvUs) / 1e6, 2)} cores |`,
    `| **node CPU, steady** | sum | **${num(nodeCpu, 2)} cores** |`,
    `| **cores for nodes** | ${num(nodeCpu, 2)} / ${w.cpuTarget} | **${cores}** |`,
    `| **node processes** | max(open files, CPU: ${num(nodeCpu, 2)} / ${w.cpuTarget} per process) | **${nodes}** (${int(w.conns / nodes)} connections each) |`,
    `| reconnect storm, extra CPU | ${int(w.conns)} in ${w.stormSeconds} s = ${int(stormCps)}/s × ${num(value(f, 'connect.json'), 0)} µs | +${num(stormCpu, 2)} cores while it lasts |`,
    `| **node memory** | ${int(w.conns)} × (${kb(value(f, 'mem.conn.json'))} + ${kb(Math.max(0, value(f, 'mem.sub.own')))} own channel) + ${nodes} × ${num(value(f, 'mem.node.base') / 2 ** 20, 0)} MB base | **${num(nodeMem / 1e9, 1)} GB** |`,
    `| Redis CPU | ${int(pubs)} × ${num(value(f, 'publish.redis.server'), 1)} µs + ${int(pubsubMsgs)} × ${num(Math.max(0, value(f, 'redis.per.listener')), 2)} µs | ${num(redisCpu, 2)} cores |`,
    `| Redis memory (history) | ${int(entries)} entries × ${int(perEntry)} B + ${int(channels)} channels × ${int(perChannel)} B | ${num(redisMem / 1e9, 1)} GB |`,
    `| **Redis shards** | max(CPU ${num(redisCpu, 2)} / ${w.cpuTarget}, memory ${num(redisMem / 1e9, 1)} / ${w.redisGb} GB) | **${Math.max(1, shardsCpu, shardsMem)}** |`,
  );
  return L.join('\n');
}

/** The measured costs as a markdown table. */
export function renderTable(f: CapacityResult['figures'], o: CapacityOptions): string {
  const L: string[] = ['| cost | Switchboard | raw ws | × raw ws | load (1 min) |', '|---|---|---|---|---|'];
  const cell = (k: Key, fmt: (v: number) => string): string => (f[k] ? fmt(f[k].value) : 'n/a');
  const us =
    (d = 1) =>
    (v: number) =>
      `${num(v, d)} µs`;
  const bytes = (v: number): string =>
    Math.abs(v) >= 4 * 2 ** 20 ? `${num(v / 2 ** 20, 1)} MB` : Math.abs(v) >= 4096 ? kb(v) : `${int(v)} B`;
  const load = (...ks: Key[]): string =>
    ks
      .map((k) => f[k]?.load)
      .filter((x): x is number => x !== undefined)
      .map((x) => num(x, 1))
      .join(', ');
  const row = (label: string, k: Key, fmt: (v: number) => string, raw?: Key): void => {
    // no ratio to a zero or negative figure (a window shorter than the /proc clock tick measures 0: --tiny on a busy box)
    const ratio = raw && f[k] && f[raw] && f[raw].value > 0 ? `${num(f[k].value / f[raw].value, 2)}×` : '–';
    L.push(`| ${label} | ${cell(k, fmt)} | ${raw ? cell(raw, fmt) : '–'} | ${ratio} | ${raw ? load(k, raw) : load(k)} |`);
  };
  row('CPU per connect (+ 1 subscribe), JSON', 'connect.json', us(0), 'connect.raw');
  row('CPU per connect (+ 1 subscribe), Protobuf', 'connect.protobuf', us(0), 'connect.raw');
  row(`CPU per extra subscription (in the connect batch, ${o.extraSubs} more)`, 'subscribe.extra', us(1));
  row('CPU per delivery, JSON, memory engine (1 publication per API request)', 'delivery.json', us(2), 'delivery.raw');
  row('CPU per delivery, JSON, 10 publications per API request (written together)', 'delivery.json.coalesced', us(2), 'delivery.raw');
  row('CPU per delivery, Protobuf, memory engine', 'delivery.protobuf', us(2), 'delivery.raw');
  row('CPU per delivery, JSON, Redis engine', 'delivery.redis', us(2), 'delivery.raw');
  row('CPU per engine publish, memory (API batch of 100, history on)', 'publish.memory', us(1));
  row('CPU per engine publish, memory (one /api/publish per request)', 'publish.memory.single', us(1));
  row('CPU per engine publish, Redis: node (API batch of 100, history on)', 'publish.redis', us(1));
  row('CPU per engine publish, Redis: redis-server', 'publish.redis.server', us(1));
  row('CPU per publication received + delivered once, memory engine', 'receive.memory', us(1));
  row('CPU per publication received over PUB/SUB + delivered once, Redis engine', 'receive.redis', us(1));
  row('Redis CPU per publish per further node subscribed (PUB/SUB listener)', 'redis.per.listener', us(2));
  row('memory per connection (RSS, 1 subscription), JSON', 'mem.conn.json', bytes, 'mem.conn.raw');
  row('memory per connection (RSS, 1 subscription), Protobuf', 'mem.conn.protobuf', bytes, 'mem.conn.raw');
  row('… of which V8 heap, JSON', 'heap.conn.json', bytes, 'heap.conn.raw');
  row('… of which V8 heap, Protobuf', 'heap.conn.protobuf', bytes, 'heap.conn.raw');
  row('memory per extra subscription to a shared channel (heap)', 'mem.sub.shared', bytes);
  row('memory per extra subscription to a channel of its own (heap)', 'mem.sub.own', bytes);
  row('memory of an idle node (RSS, no connections)', 'mem.node.base', bytes);
  row(`memory per history entry, memory engine (heap, ${o.payload} B payload)`, 'history.memory', bytes);
  row(`memory per history entry, Redis (used_memory, ${o.payload} B payload)`, 'history.redis', bytes);
  row(
    `memory per channel with 1 history entry, memory engine (heap, history_size ${WORKLOAD_USER_HISTORY})`,
    'history.memory.channel',
    bytes,
  );
  row(
    `memory per channel with 1 history entry, Redis (used_memory, history_size ${WORKLOAD_USER_HISTORY})`,
    'history.redis.channel',
    bytes,
  );
  return L.join('\n');
}

// ---------------------------------------------------------------- command line

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  installExitHooks();
  const o: CapacityOptions = { ...(process.argv.includes('--tiny') ? TINY : FULL) };
  const map: [keyof CapacityOptions, string][] = [
    ['conns', 'conns'],
    ['fanConns', 'fan-conns'],
    ['fanPubs', 'fan-pubs'],
    ['publishes', 'publishes'],
    ['payload', 'payload'],
    ['extraSubs', 'extra-subs'],
    ['listeners', 'listeners'],
    ['rounds', 'rounds'],
  ];
  for (const [k, name] of map) if (flag(name) !== undefined) (o[k] as number) = Number(flag(name));
  const w: Workload = { ...WORKLOAD };
  for (const k of Object.keys(w) as (keyof Workload)[]) {
    const v = flag(`m-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (v !== undefined) w[k] = Number(v);
  }
  const t0 = performance.now();
  const load0 = loadavg();
  const r = await measureCapacity(o, (s) => process.stderr.write(`capacity: ${s}\n`));
  const args = process.argv.slice(2).join(' ');
  const out = [
    `Measured ${new Date().toISOString().slice(0, 16)}Z in ${num((performance.now() - t0) / 1000, 0)} s with \`npm run capacity -w @switchboard/bench${args ? ` -- ${args}` : ''}\` ` +
      `(${o.rounds} round(s), medians; ${o.conns} connections per memory session, ${o.fanConns} subscribers × ${o.fanPubs} publications per delivery window, ` +
      `${o.publishes} publishes per engine window); load average at start ${load0.map((x) => num(x, 2)).join(' ')}.`,
    '',
    renderTable(r.figures, o),
    '',
    renderModel(r.figures, w),
  ];
  const bad = r.checks.deliveries.filter((d) => d.delivered !== d.expected || d.dup > 0);
  if (bad.length > 0 || r.checks.connectFailures > 0)
    out.push('', `**Warning**: ${r.checks.connectFailures} connects failed; incomplete deliveries: ${JSON.stringify(bad)}`);
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
