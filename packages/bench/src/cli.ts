#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [--systems a,b] [--scenarios x,y] [--out file]`
 * Runs every (scenario, system) pair of the plan, each against a freshly
 * started server, prints a table and writes results/latest(-quick).json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { harnessCpuSeconds, installExitHooks, killAllSync, machineBusySeconds } from './proc.js';
import { Progress } from './progress.js';
import { table, sortRows } from './report.js';
import { runScenario, type Row, type ScenarioSpec } from './scenarios.js';
import { SYSTEMS, systemByName } from './sut/systems.js';

interface PlanItem {
  spec: ScenarioSpec;
  systems: string[];
}

const CORE = ['switchboard', 'raw-ws', 'socketio-ws'];

/** About two minutes on 2 cores. */
function quickPlan(): PlanItem[] {
  return [
    { spec: { type: 'fanout', conns: 5000, rate: 10, durationMs: 3000 }, systems: CORE },
    { spec: { type: 'many-channels', conns: 2000, personalRate: 500, sharedRate: 5, durationMs: 2500 }, systems: CORE },
    { spec: { type: 'max-rate', conns: 1000, startRate: 10, factor: 2, stepMs: 1500, maxSteps: 5, p99LimitMs: 50 }, systems: CORE },
    { spec: { type: 'idle', conns: 5000, holdMs: 3000 }, systems: CORE },
    { spec: { type: 'reconnect', conns: 1000, rate: 20, afterMs: 1000 }, systems: CORE },
  ];
}

/** Under twenty minutes on 2 cores. */
function fullPlan(): PlanItem[] {
  return [
    { spec: { type: 'fanout', conns: 1000, rate: 50, durationMs: 8000 }, systems: [...CORE, 'socketio'] },
    { spec: { type: 'fanout', conns: 5000, rate: 10, durationMs: 8000 }, systems: [...CORE, 'switchboard-redis'] },
    { spec: { type: 'fanout', conns: 10_000, rate: 5, durationMs: 8000 }, systems: CORE },
    { spec: { type: 'fanout', conns: 50_000, rate: 1, durationMs: 10_000 }, systems: [...CORE, 'switchboard-w6'] },
    {
      spec: { type: 'many-channels', conns: 10_000, personalRate: 1000, sharedRate: 2, durationMs: 8000 },
      systems: [...CORE, 'switchboard-redis'],
    },
    { spec: { type: 'max-rate', conns: 1000, startRate: 10, factor: 1.5, stepMs: 3000, maxSteps: 8, p99LimitMs: 50 }, systems: CORE },
    { spec: { type: 'idle', conns: 10_000, holdMs: 30_000 }, systems: CORE },
    { spec: { type: 'idle', conns: 50_000, holdMs: 30_000 }, systems: [...CORE, 'switchboard-w6'] },
    { spec: { type: 'idle', conns: 100_000, holdMs: 30_000 }, systems: [...CORE, 'switchboard-w6'] },
    { spec: { type: 'reconnect', conns: 10_000, rate: 20, afterMs: 2000 }, systems: [...CORE, 'switchboard-redis'] },
  ];
}

function arg(name: string): string | undefined {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = process.argv[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : process.argv[i + 1];
}

function usage(): void {
  process.stdout.write(`usage: npm run bench -- [--quick] [--systems a,b] [--scenarios x,y] [--out file.json]
systems:   ${SYSTEMS.map((s) => `${s.name} (${s.describe})`).join('\n           ')}
scenarios: fanout, many-channels, max-rate, idle (+ connect-storm), reconnect
`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) return usage();
  installExitHooks();
  const quick = process.argv.includes('--quick');
  let plan = quick ? quickPlan() : fullPlan();
  const onlySystems = arg('systems')?.split(',');
  const onlyScenarios = arg('scenarios')?.split(',');
  onlySystems?.forEach((s) => systemByName(s));
  if (onlyScenarios)
    plan = plan.filter((p) => onlyScenarios.includes(p.spec.type) || (p.spec.type === 'idle' && onlyScenarios.includes('connect-storm')));
  if (onlySystems) plan = plan.map((p) => ({ ...p, systems: onlySystems })); // explicit systems run every scenario of the plan

  const progress = new Progress();
  const resultsDir = fileURLToPath(new URL('../../results/', import.meta.url));
  mkdirSync(`${resultsDir}raw`, { recursive: true });
  const partial = `${resultsDir}raw/partial-${quick ? 'quick' : 'full'}.json`;
  const rows: Row[] = [];
  const startedAt = new Date();
  const loadAtStart = os.loadavg()[0] ?? 0;
  if (loadAtStart > 1)
    progress.log(`note: load average is ${loadAtStart.toFixed(1)} before starting; other work on this machine will skew the figures`);
  const total = plan.reduce((a, p) => a + p.systems.length, 0);
  let n = 0;
  for (const item of plan) {
    for (const name of item.systems) {
      n++;
      progress.set(`(${n}/${total}) ${name} ${item.spec.type} ${item.spec.conns}`);
      const t0 = performance.now();
      const busy0 = machineBusySeconds();
      const own0 = harnessCpuSeconds();
      const got = await runScenario(systemByName(name), item.spec, { progress });
      // CPU that neither the harness nor the system under test used: someone else shares the machine
      const seconds = (performance.now() - t0) / 1000;
      const otherPct = Math.max(0, ((machineBusySeconds() - busy0 - (harnessCpuSeconds() - own0)) / seconds) * 100);
      for (const r of got) {
        r.details = { ...r.details, otherCpuPct: Math.round(otherPct) };
        if (otherPct > 25 && r.status === 'ok')
          r.note = `${r.note ? `${r.note}; ` : ''}noisy: other processes used ${Math.round(otherPct)}% CPU meanwhile`;
      }
      rows.push(...got);
      // a run that is interrupted still leaves what it measured
      writeFileSync(partial, JSON.stringify({ mode: quick ? 'quick' : 'full', rows: sortRows(rows) }, null, 2));
      progress.log(
        `(${n}/${total}) ${name} ${item.spec.type} ${item.spec.conns}: ${got.map((r) => r.status).join(',')} in ${((performance.now() - t0) / 1000).toFixed(1)} s${
          got.some((r) => r.note)
            ? ` — ${got
                .map((r) => r.note)
                .filter(Boolean)
                .join('; ')}`
            : ''
        }`,
      );
    }
  }
  progress.done();

  const text = table(rows);
  process.stdout.write(`\n${text}\n`);
  const result = {
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
    mode: quick ? 'quick' : 'full',
    loadAvgAtStart: loadAtStart,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.type()} ${os.release()}`,
    },
    rows: sortRows(rows),
    table: text,
  };
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const out = arg('out') ?? `${resultsDir}latest${quick ? '-quick' : ''}.json`;
  writeFileSync(out, JSON.stringify(result, null, 2));
  writeFileSync(`${resultsDir}raw/${stamp}-${result.mode}.json`, JSON.stringify(result, null, 2));
  process.stdout.write(`\nresults: ${out}\n`);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`\nbench failed: ${String((e as Error)?.stack ?? e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAllSync());
