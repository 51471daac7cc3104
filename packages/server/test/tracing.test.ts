/**
 * Tracing end to end: a `switchboard serve` process with
 * opentelemetry.enabled exports over OTLP/HTTP to a receiver this test
 * starts, configured only by the standard OTEL_* variables. An API call's
 * traceparent is the parent of its span; publish → engine → fan-out are one
 * trace; fan-out is one span per publication, whatever the subscriber count.
 * An unreachable collector breaks nothing and is counted and logged once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { embedded } from './helpers/embedded.js';
import { freePort } from './helpers/net.js';
import { OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receiver.js';
import { RawClient } from './helpers/raw.js';
import { baseConfig, startServer, sumMetric, type RunningServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

const CHANNELS = { channel: { without_namespace: { allow_subscribe_for_client: true, allow_publish_for_subscriber: true } } };

async function traced(t: any, endpoint: string): Promise<RunningServer> {
  return startServer(t, baseConfig({ ...CHANNELS, opentelemetry: { enabled: true } }), {
    env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'sb-under-test' },
  });
}

async function subscribers(t: any, s: RunningServer, channel: string, n: number): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await RawClient.open(t, s);
    await c.connect(await mintToken(s.secret, { sub: `u${i}` }));
    assert.ok((await c.command('subscribe', { channel })).subscribe);
    out.push(c);
  }
  return out;
}

async function apiPublish(s: RunningServer, channel: string, data: unknown, traceparent?: string): Promise<any> {
  const res = await fetch(`${s.api}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': s.apiKey, ...(traceparent ? { traceparent } : {}) },
    body: JSON.stringify({ channel, data }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

test('an API publish is one trace under the caller’s traceparent: api → engine publish → one fan-out span per publication', async (t) => {
  const otlp = await OtlpReceiver.start(t);
  const s = await traced(t, otlp.url);
  const subs = await subscribers(t, s, 'news', 3);
  const traceId = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  const N = 4;
  for (let i = 0; i < N; i++) {
    const got = subs.map((c) => waitFor(c, 'message', { ms: 5000, filter: (m: any) => m.push?.pub?.data?.i === i }));
    const r = await apiPublish(s, 'news', { i }, `00-${traceId}-${callerSpan}-01`);
    assert.ok(r.result, 'published');
    await Promise.all(got);
  }
  await until(
    'the spans of the 4 publishes arrive',
    15_000,
    () => otlp.spans.filter((x) => x.traceId === traceId && x.name === 'fanout').length >= N,
  );
  const inTrace = otlp.spans.filter((x) => x.traceId === traceId);
  const api = inTrace.filter((x) => x.name === 'api publish');
  const engine = inTrace.filter((x) => x.name === 'engine publish');
  const fanout = inTrace.filter((x) => x.name === 'fanout');
  assert.equal(api.length, N);
  assert.equal(engine.length, N);
  assert.equal(fanout.length, N, `one fan-out span per publication with 3 subscribers (got ${fanout.length})`);
  const ids = (xs: ReceivedSpan[]): Set<string> => new Set(xs.map((x) => x.spanId));
  assert.ok(
    api.every((x) => x.parentSpanId === callerSpan),
    'the API span is the child of the traceparent',
  );
  assert.ok(
    engine.every((x) => ids(api).has(x.parentSpanId)),
    'engine publish under the API call',
  );
  assert.ok(
    fanout.every((x) => ids(engine).has(x.parentSpanId)),
    'fan-out under the engine publish',
  );
  assert.ok(fanout.every((x) => x.attributes['switchboard.subscribers'] === 3 && x.attributes['messaging.destination.name'] === 'news'));
  assert.ok(
    api.every((x) => x.service === 'sb-under-test'),
    'OTEL_SERVICE_NAME names the service',
  );
  assert.equal(otlp.spans.filter((x) => x.name === 'fanout').length, N, 'no fan-out span outside these publishes');
});

test('a client publish command is traced: client publish → engine publish → fan-out; an API call without traceparent starts a trace', async (t) => {
  const otlp = await OtlpReceiver.start(t);
  const s = await traced(t, otlp.url);
  const [c, other] = await subscribers(t, s, 'room', 2);
  const got = waitFor(other!, 'message', { ms: 5000, filter: (m: any) => m.push?.pub?.data?.from === 'client' });
  const r = await c!.command('publish', { channel: 'room', data: { from: 'client' } });
  assert.ok(!r.error, JSON.stringify(r.error));
  await got;
  await apiPublish(s, 'room', { from: 'api' });
  await until(
    'client publish and api publish spans',
    15_000,
    () => otlp.named('client publish').length === 1 && otlp.named('api publish').length === 1,
  );
  await until('their fan-outs', 15_000, () => otlp.named('fanout').length === 2);
  const [cmd] = otlp.named('client publish');
  const engine = otlp.named('engine publish').find((x) => x.parentSpanId === cmd!.spanId);
  assert.ok(engine, 'engine publish under the client command');
  assert.ok(otlp.named('fanout').some((x) => x.parentSpanId === engine.spanId && x.traceId === cmd!.traceId));
  const [api] = otlp.named('api publish');
  assert.equal(api!.parentSpanId, '', 'a root span without traceparent');
  assert.notEqual(api!.traceId, cmd!.traceId);
  assert.ok(otlp.named('client connect').length >= 2 && otlp.named('client subscribe').length >= 2, 'every client command has its span');
});

test('an unreachable OTLP endpoint: publishing and fan-out work, failed exports are counted and logged once', async (t) => {
  const dead = await freePort();
  const s = await traced(t, `http://127.0.0.1:${dead}/v1/traces`);
  const subs = await subscribers(t, s, 'news', 2);
  for (let i = 0; i < 5; i++) {
    const got = subs.map((c) => waitFor(c, 'message', { ms: 5000, filter: (m: any) => m.push?.pub?.data?.i === i }));
    await apiPublish(s, 'news', { i });
    await Promise.all(got);
    // Exports run every 100 ms: let a few fail between publishes.
    await until(
      `export failure ${i + 1} counted`,
      20_000,
      async () => sumMetric(await s.metricsText(), 'switchboard_tracing_export_failures_total') >= i + 1,
    );
  }
  const logged = (s.stdout() + s.stderr()).split('\n').filter((l) => l.includes('trace export failed'));
  assert.equal(logged.length, 1, 'logged once, however many exports failed');
  const ready = await fetch(`${s.http}/ready`);
  assert.equal(ready.status, 200, 'still ready');
});

test('tracing off (the default): the node holds no tracer, and sessions and fan-out get the plain paths', async (t) => {
  const node = await embedded(t, CHANNELS);
  assert.equal(node.sb.tracing, undefined, 'no Tracing object: no provider, no spans');
  // The session context carries no tracer, so client commands take the untraced branch.
  assert.equal((node.sb as any).ctx.tracing, undefined);
  // The broker the node publishes through is the engine's own, not a traced wrapper.
  assert.equal((node.sb as any).broker, node.sb.engine.broker);
});
