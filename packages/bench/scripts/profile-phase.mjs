#!/usr/bin/env node
/**
 * A V8 CPU profile (node --cpu-prof) restricted to a connect storm's connect phase:
 * the samples between the first and the last one under ws's handleUpgrade, divided
 * by the connections (µs per connect), self and inclusive, so start-up and shutdown
 * do not hide where a connect's time goes (docs/PERFORMANCE.md, connect storms).
 * Usage: node packages/bench/scripts/profile-phase.mjs PROFILE.cpuprofile CONNECTIONS [top-self] [top-inclusive]
 */
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const conns = Number(process.argv[3]);
const topN = Number(process.argv[4] ?? 40);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const key = (id) => {
  const cf = byId.get(id).callFrame;
  return `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`;
};
const under = (id, re) => {
  let c = id;
  while (c !== undefined) {
    if (re.test(byId.get(c).callFrame.functionName)) return true;
    c = parent.get(c);
  }
  return false;
};
let t = p.startTime;
const ts = [];
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i];
  ts.push(t);
}
let first = -1,
  last = -1;
for (let i = 0; i < p.samples.length; i++)
  if (under(p.samples[i], /^handleUpgrade$/)) {
    if (first < 0) first = i;
    last = i;
  }
const self = new Map(),
  incl = new Map();
let total = 0,
  idle = 0;
for (let i = first; i <= last; i++) {
  const dt = (ts[i + 1] ?? ts[i]) - ts[i];
  const id = p.samples[i];
  const fn = byId.get(id).callFrame.functionName;
  if (fn === '(idle)') {
    idle += dt;
    continue;
  }
  total += dt;
  self.set(key(id), (self.get(key(id)) ?? 0) + dt);
  const seen = new Set();
  let c = id;
  while (c !== undefined) {
    const k = key(c);
    if (!seen.has(k)) {
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + dt);
    }
    c = parent.get(c);
  }
}
console.log(
  `phase ${((ts[last] - ts[first]) / 1e6).toFixed(2)} s, busy ${(total / conns).toFixed(1)} µs/conn, idle ${(idle / conns).toFixed(1)} µs/conn`,
);
const pr = (m, title, n) => {
  console.log('--', title);
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .forEach(([k, v]) => console.log((v / conns).toFixed(1).padStart(7) + ' µs', k));
};
pr(self, 'self', topN);
pr(incl, 'inclusive', Number(process.argv[5] ?? 60));
