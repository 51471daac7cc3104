import type { Row, ScenarioName } from './scenarios.js';

/** The figure each scenario is compared on, and whether more is better. */
const KEY: Record<ScenarioName, { label: string; get: (r: Row) => number | undefined; higherIsBetter: boolean }> = {
  // at a fixed publish rate every system delivers the same; what differs is the CPU it takes
  fanout: { label: 'deliveries per server CPU-second', get: (r) => perCpu(r), higherIsBetter: true },
  'many-channels': { label: 'deliveries per server CPU-second', get: (r) => perCpu(r), higherIsBetter: true },
  'max-rate': { label: 'sustained deliveries/s', get: (r) => r.deliveriesPerSec, higherIsBetter: true },
  idle: { label: 'RSS per connection (lower is better)', get: (r) => r.rssPerConnKB, higherIsBetter: false },
  'connect-storm': { label: 'connections/s', get: (r) => r.connPerSec, higherIsBetter: true },
  reconnect: { label: 'time to reconnect all (lower is better)', get: (r) => r.reconnectMs, higherIsBetter: false },
};

function perCpu(r: Row): number | undefined {
  if (r.deliveriesPerSec === undefined || !r.cpuPct) return undefined;
  return r.deliveriesPerSec / (r.cpuPct / 100);
}

/** Ratio of this row's key figure to the same scenario and size on `peer`. */
export function ratio(rows: Row[], r: Row, peer: string): number | undefined {
  if (r.status !== 'ok') return undefined;
  const other = rows.find((o) => o.system === peer && o.scenario === r.scenario && o.conns === r.conns && o.status === 'ok');
  if (!other) return undefined;
  const a = KEY[r.scenario].get(r);
  const b = KEY[r.scenario].get(other);
  if (a === undefined || b === undefined || b === 0) return undefined;
  return a / b;
}

function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  if (digits === 0 && Math.abs(n) >= 10_000) return `${(n / 1000).toFixed(0)}k`;
  return n.toFixed(digits);
}

const ORDER: ScenarioName[] = ['fanout', 'many-channels', 'max-rate', 'idle', 'connect-storm', 'reconnect'];

export function sortRows(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => ORDER.indexOf(a.scenario) - ORDER.indexOf(b.scenario) || a.conns - b.conns);
}

/** Plain-text table (also valid inside a Markdown code block), with notes underneath. */
export function table(rows: Row[]): string {
  const head = [
    'system',
    'scenario',
    'conns',
    'deliv/s',
    'p50ms',
    'p90ms',
    'p99ms',
    'maxms',
    'lost',
    'dup',
    'cpu%',
    'rss/conn',
    'extra',
    '×raw',
    '×sio',
  ];
  const notes: string[] = [];
  const body = sortRows(rows).map((r) => {
    if (r.note) notes.push(`${r.system} ${r.scenario} ${r.conns}: ${r.note}`);
    if (r.status !== 'ok')
      return [r.system, r.scenario, String(r.conns), r.status, '', '', '', '', '', '', '', '', `[${notes.length}]`, '', ''];
    let extra = '';
    if (r.scenario === 'connect-storm') extra = `${fmt(r.connectMs)} ms`;
    else if (r.scenario === 'reconnect') extra = `${fmt(r.reconnectMs)} ms`;
    else if (r.scenario === 'idle' && r.heapPerConnKB !== undefined) extra = `heap ${fmt(r.heapPerConnKB, 1)}K`;
    else if (r.pubRate !== undefined) extra = `${fmt(r.pubRate)} pub/s`;
    if (r.bytesPerDelivery !== undefined && (r.scenario === 'fanout' || r.scenario === 'many-channels'))
      extra += ` ${fmt(r.bytesPerDelivery)} B/deliv`;
    if (r.note) extra += ` [${notes.length}]`;
    const rx = ratio(rows, r, 'raw-ws');
    const sx = ratio(rows, r, 'socketio-ws');
    return [
      r.system,
      r.scenario,
      String(r.conns),
      r.scenario === 'connect-storm' ? `${fmt(r.connPerSec)} c/s` : fmt(r.deliveriesPerSec),
      fmt(r.p50Ms, 1),
      fmt(r.p90Ms, 1),
      fmt(r.p99Ms, 1),
      fmt(r.maxMs, 1),
      fmt(r.lost),
      fmt(r.dup),
      fmt(r.cpuPct),
      r.rssPerConnKB !== undefined ? `${fmt(r.rssPerConnKB, 1)}K` : '-',
      extra.trim(),
      r.system === 'raw-ws' || rx === undefined ? '' : rx.toFixed(2),
      r.system === 'socketio-ws' || sx === undefined ? '' : sx.toFixed(2),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < 3 || i === 12 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  out.push('');
  out.push("×raw / ×sio: ratio of the scenario's key figure to raw-ws / socketio-ws in the same run:");
  for (const s of ORDER) out.push(`  ${s}: ${KEY[s].label}`);
  if (notes.length) {
    out.push('');
    notes.forEach((n, i) => out.push(`[${i + 1}] ${n}`));
  }
  return out.join('\n');
}
