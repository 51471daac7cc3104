/**
 * deploy/prometheus/alerts.yml and deploy/grafana/switchboard.json: the
 * rules pass `promtool check rules` and their unit tests (`promtool test
 * rules`, synthetic series that must fire the alerts), and every metric the
 * rules and the dashboard's queries name is exported by a live server's
 * /metrics. promtool comes from the Debian package `prometheus`; without it
 * those two tests skip and say so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { REPO } from './helpers/docs.js';
import { scope } from './helpers/scope.js';
import { type RunningServer, startServer } from './helpers/server.js';

const DEPLOY = join(REPO, 'deploy');
const hasPromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const skipPromtool = hasPromtool ? false : 'promtool not found: install the Debian package `prometheus` (CI: .ci/run)';

const S = scope();
after(() => S.close());
let s: RunningServer;
before(async () => {
  s = await startServer(S, {});
});

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: DEPLOY, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('promtool check rules accepts deploy/prometheus/alerts.yml', { skip: skipPromtool }, () => {
  const r = promtool('check', 'rules', 'prometheus/alerts.yml');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: the alerts fire on synthetic series (and stay quiet where they should)', { skip: skipPromtool }, () => {
  const r = promtool('test', 'rules', 'prometheus/alerts.test.yml');
  assert.equal(r.status, 0, r.out);
});

/** Metric names a PromQL expression refers to (ours, prom-client's process_/nodejs_ defaults, and Prometheus' `up`). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(switchboard_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)\b/g)].map((m) => m[1]!);
}

/** Series names a scrape can hold: every `# TYPE`d metric, with a histogram's and summary's sample suffixes. */
function exported(text: string): Set<string> {
  const names = new Set<string>(['up']); // added by Prometheus to every target
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    names.add(name!);
    if (type === 'histogram') for (const sfx of ['_bucket', '_sum', '_count']) names.add(name! + sfx);
    if (type === 'summary') for (const sfx of ['_sum', '_count']) names.add(name! + sfx);
  }
  return names;
}

function unknownIn(exprs: string[], names: Set<string>): string[] {
  return [...new Set(exprs.flatMap(metricNames))].filter((n) => !names.has(n));
}

test('every metric the alert rules name is exported by a live server', async () => {
  const names = exported(await s.metricsText());
  const rules = (
    parseYaml(readFileSync(join(DEPLOY, 'prometheus/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    }
  ).groups.flatMap((g) => g.rules);
  const exprs = rules.map((r) => r.expr);
  assert.ok(rules.length >= 8);
  assert.ok(new Set(exprs.flatMap(metricNames)).size >= 6, 'the rules name our metrics');
  assert.deepEqual(unknownIn(exprs, names), []);
  for (const a of ['SwitchboardSlowConsumers', 'SwitchboardEngineUnavailable', 'SwitchboardProxyBreakerOpen', 'SwitchboardApiErrorRate'])
    assert.ok(
      rules.some((r) => r.alert === a),
      a,
    );
  // Not vacuous: a misspelt name is caught.
  assert.deepEqual(unknownIn(['rate(switchboard_queue_drop_total[5m])'], names), ['switchboard_queue_drop_total']);
});

test('the Grafana dashboard is well-formed and every query names metrics a live server exports', async () => {
  const names = exported(await s.metricsText());
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana/switchboard.json'), 'utf8')) as {
    uid: string;
    title: string;
    panels: Array<{ id: number; title: string; gridPos: object; targets: Array<{ expr: string; refId: string }> }>;
  };
  assert.ok(dash.uid && dash.title);
  assert.ok(dash.panels.length >= 10);
  assert.equal(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, 'panel ids are unique');
  const exprs: string[] = [];
  for (const p of dash.panels) {
    assert.ok(p.gridPos && p.targets.length > 0, `panel "${p.title}" has a position and a query`);
    for (const t of p.targets) {
      assert.ok(metricNames(t.expr).length > 0, `panel "${p.title}": the query names a metric`);
      exprs.push(t.expr);
    }
  }
  assert.deepEqual(unknownIn(exprs, names), []);
});
