#!/usr/bin/env node
/**
 * Connect storm alone, measured so that a busy machine skews it as little as
 * possible: `npm run storm -w @switchboard/bench -- [--systems switchboard,raw-ws]
 * [--conns 10000] [--rounds 3] [--concurrency 400]`.
 *
 * Each round starts every system afresh, in turn (so the systems of one round
 * share the machine's load), connects `conns` clients (Switchboard clients send
 * a distinct HS256 token each, made before the measured phase as an app's
 * backend makes them, and subscribe to one channel; raw ws clients subscribe
 * to one channel) and records, per system:
 *   - connects/s (wall clock: what a busy machine skews),
 *   - server CPU-µs per connect (/proc utime+stime of the server's processes:
 *     what the load of other processes skews far less),
 *   - the load generator's CPU-µs per connect (it shares the 2 cores),
 *   - for a cluster, the primary's share, and connects/s per slice of the run.
 * With --callgrind the servers run under valgrind (callgrind, instrumented
 * during the connect phase only): instructions per connect, which other
 * processes on the machine do not change (user space only; kernel work is not counted).
 * It prints one table per round and the medians with the ratios to the first
 * system named (`--systems switchboard,raw-ws` → ×raw ws).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { LoadGenerator } from './load/generator.js';
import { cpuSeconds, descendants, harnessCpuSeconds, installExitHooks, sleep } from './proc.js';
import { systemByName } from './sut/systems.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

interface Result {
  system: string;
  ok: number;
  failed: number;
  ms: number;
  connPerSec: number;
  /** Server CPU-µs per connect: all its processes. */
  serverUs: number;
  /** Of which the primary (cluster) or the only process. */
  primaryUs: number;
  loadGenUs: number;
  /** connects/s in successive slices of `slice` connections (cluster runs: where it slows down). */
  slices: number[];
  /** Server CPU-µs per connect in each slice (primary/workers for a cluster): does the cost per connect grow with N? */
  sliceUs: string[];
  load1: number;
  /** Open files per server process at the end of the connect phase (how a cluster spread the connections). */
  fds: number[];
  /** Connections still open at the end of the connect phase, and the close codes of those that were not. */
  open: number;
  closeCodes: Record<string, number>;
  /** With --callgrind: instructions the server executed per connect (user space; immune to the machine's load). */
  irPerConn?: number;
  errors: Record<string, number>;
}

/** With --callgrind: where valgrind writes, and the per-pid control of instrumentation around the connect phase. */
let callgrindDir: string | undefined;
function callgrind(pid: number, what: 'on' | 'dump'): number | undefined {
  if (!callgrindDir) return undefined;
  if (what === 'on') {
    execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
    return undefined;
  }
  execFileSync('callgrind_control', ['--dump=connect', String(pid)], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-i', 'off', String(pid)], { stdio: 'ignore' });
  let ir = 0;
  for (const f of readdirSync(callgrindDir).filter((f) => f.startsWith(`cg.${pid}.`))) {
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(callgrindDir, f), 'utf8'));
    if (m) ir += Number(m[1]);
  }
  return ir;
}

/** With --perf: `perf record` (cpu-clock, call graphs) of the server's processes during the connect phase only. */
let perfDir: string | undefined;
function perfStart(name: string, pids: number[]): ChildProcess | undefined {
  if (!perfDir) return undefined;
  const out = join(perfDir, `perf.${name}.${Date.now()}.data`);
  const p = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '2000', '-g', '-p', pids.join(','), '-o', out], { stdio: 'ignore' });
  process.stdout.write(`perf: ${out}\n`);
  return p;
}
async function perfStop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGINT');
  await done;
}

async function once(name: string, conns: number, concurrency: number, slice: number): Promise<Result> {
  const sys = systemByName(name);
  const why = sys.unavailable();
  if (why) throw new Error(`${name}: ${why}`);
  const sut = await sys.start({});
  const load = new LoadGenerator({ kind: sys.kind, url: sut.wsUrl, conns, plan: { shared: ['storm'] }, concurrency, timeoutMs: 30_000 });
  try {
    await load.start();
    await load.prepare();
    await sleep(500);
    const pids = [sut.pid, ...descendants(sut.pid)];
    const cpuOf = (): number[] => pids.map(cpuSeconds);
    const c0 = cpuOf();
    const g0 = harnessCpuSeconds();
    const load1 = os.loadavg()[0] ?? 0;
    callgrind(sut.pid, 'on');
    const perf = perfStart(name, pids);
    if (perf) await sleep(300);
    const slices: number[] = [];
    const sliceUs: string[] = [];
    let mark = { t: performance.now(), open: 0, cpu: c0, gen: g0 };
    const sampler = setInterval(() => {
      const open = load.progress().open;
      if (open - mark.open >= slice) {
        const now = performance.now();
        const cpu = cpuOf();
        const gen = harnessCpuSeconds();
        const n = open - mark.open;
        const us = (from: number, to: number): number =>
          Math.round((cpu.slice(from, to).reduce((a, v, i) => a + v - mark.cpu[from + i]!, 0) / n) * 1e6);
        slices.push(Math.round(n / ((now - mark.t) / 1000)));
        const server = us(0, pids.length);
        const rest = Math.round(((gen - mark.gen) / n) * 1e6) - server;
        sliceUs.push(`${pids.length > 1 ? `${us(0, 1)}/${us(1, pids.length)}` : String(server)}+${rest}`);
        mark = { t: now, open, cpu, gen };
      }
    }, 250);
    const r = await load.connect();
    clearInterval(sampler);
    await perfStop(perf);
    const ir = callgrind(sut.pid, 'dump');
    const fds = pids.map((p) => {
      try {
        return readdirSync(`/proc/${p}/fd`).length;
      } catch {
        return 0;
      }
    });
    const c1 = cpuOf();
    const g1 = harnessCpuSeconds();
    const rep = await load.report();
    const server = c1.reduce((a, v, i) => a + v - c0[i]!, 0);
    const ok = Math.max(1, r.ok);
    return {
      system: name,
      ok: r.ok,
      failed: r.failed,
      ms: Math.round(r.ms),
      connPerSec: Math.round(r.ok / (r.ms / 1000)),
      serverUs: Math.round((server / ok) * 1e6),
      primaryUs: Math.round(((c1[0]! - c0[0]!) / ok) * 1e6),
      loadGenUs: Math.round(((g1 - g0 - server) / ok) * 1e6),
      slices,
      sliceUs,
      fds,
      open: rep.openConns,
      closeCodes: rep.closeCodes,
      load1: Math.round(load1 * 100) / 100,
      irPerConn: ir === undefined ? undefined : Math.round(ir / ok),
      errors: r.errors,
    };
  } finally {
    await load.stop();
    await sut.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const pids = (r: Result): string => (r.sliceUs[0]?.includes('/') ? ' (primary/workers)' : '');

function line(r: Result): string {
  return (
    `${r.system.padEnd(16)} ${String(r.ok).padStart(7)} ok ${String(r.failed).padStart(5)} failed ${String(r.connPerSec).padStart(6)} c/s ` +
    `server ${String(r.serverUs).padStart(5)} µs/conn (primary ${r.primaryUs}) load-gen ${String(r.loadGenUs).padStart(5)} µs/conn  load ${r.load1}` +
    (r.open < r.ok ? `  only ${r.open} still open (closed after connecting: ${JSON.stringify(r.closeCodes)})` : '') +
    (r.fds.length > 1 ? `  open files per process ${r.fds.join(' ')}` : '') +
    (r.irPerConn !== undefined ? `  callgrind ${r.irPerConn} instructions/conn` : '') +
    (r.slices.length > 1
      ? `\n    c/s per slice ${r.slices.join(' ')}\n    µs/conn per slice: server${pids(r)}+load-gen ${r.sliceUs.join(' ')}`
      : '') +
    (r.failed ? `  errors ${JSON.stringify(r.errors)}` : '')
  );
}

async function main(): Promise<void> {
  installExitHooks();
  const systems = arg('systems', 'switchboard,raw-ws').split(',');
  const conns = Number(arg('conns', '10000'));
  const rounds = Number(arg('rounds', '3'));
  const concurrency = Number(arg('concurrency', '400'));
  const slice = Number(arg('slice', String(Math.max(1000, Math.round(conns / 10)))));
  if (process.argv.includes('--perf')) perfDir = mkdtempSync(join(os.tmpdir(), 'storm-perf-'));
  if (process.argv.includes('--callgrind')) {
    callgrindDir = mkdtempSync(join(os.tmpdir(), 'storm-callgrind-'));
    process.env.BENCH_SERVER_WRAPPER ??= `valgrind --tool=callgrind --instr-atstart=no -q --callgrind-out-file=${callgrindDir}/cg.%p`;
  }
  const all: Result[] = [];
  process.stdout.write(
    `connect storm: ${conns} conns, ${concurrency} in flight, ${rounds} round(s), uptime: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  for (let round = 1; round <= rounds; round++) {
    for (const s of systems) {
      const r = await once(s, conns, concurrency, slice);
      all.push(r);
      process.stdout.write(`round ${round} ${line(r)}\n`);
    }
  }
  const base = systems[0]!;
  const med = (s: string, k: 'connPerSec' | 'serverUs' | 'loadGenUs' | 'irPerConn'): number =>
    median(all.filter((r) => r.system === s).map((r) => r[k] ?? 0));
  process.stdout.write(`medians over ${rounds} round(s):\n`);
  for (const s of systems) {
    const ratio =
      s === base
        ? ''
        : `  ${base} ×${s}: c/s ${(med(base, 'connPerSec') / med(s, 'connPerSec')).toFixed(2)}, server CPU per connect ${(med(base, 'serverUs') / med(s, 'serverUs')).toFixed(2)}${callgrindDir ? `, instructions per connect ${(med(base, 'irPerConn') / med(s, 'irPerConn')).toFixed(2)}` : ''}`;
    process.stdout.write(
      `  ${s.padEnd(16)} ${med(s, 'connPerSec')} c/s, server ${med(s, 'serverUs')} µs/conn, load-gen ${med(s, 'loadGenUs')} µs/conn${callgrindDir ? `, ${med(s, 'irPerConn')} instructions/conn` : ''}${ratio}\n`,
    );
  }
  // per-round ratios (same load for both systems of a round)
  if (systems.length > 1) {
    const other = systems[1]!;
    const per: string[] = [];
    for (let i = 0; i < rounds; i++) {
      const a = all[i * systems.length]!;
      const b = all[i * systems.length + 1]!;
      per.push(`${(a.connPerSec / b.connPerSec).toFixed(2)}`);
    }
    process.stdout.write(`  c/s ratio ${base}/${other} per round: ${per.join(' ')}\n`);
  }
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${String((e as Error).stack ?? e)}\n`);
  process.exit(1);
});
