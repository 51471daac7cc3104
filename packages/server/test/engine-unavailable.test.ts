/**
 * Redis away: session commands and server API calls get error 100
 * (temporary), and the embedder's logger gets one line per kind per
 * interval, not one per command; the engine logs through that logger too.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { execute } from '../src/api/executor.js';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { createLogger } from '../src/observability/logger.js';
import { startServer } from '../src/server.js';
import { RawClient } from './helpers/raw.js';
import { nodeConfig, OwnRedis, SECRET, uniquePrefix } from './helpers/redis.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { until } from './helpers/wait.js';

class Lines extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const l of chunk.toString().split('\n')) if (l.trim()) this.lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  }
  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }
}

test('Redis down: client and API commands get 100; logged once per kind, on the embedder\u2019s logger', async (t) => {
  const own = await OwnRedis.start(t);
  const object = nodeConfig(own.url, uniquePrefix('unavail'), { http_server: { port: 0, address: '127.0.0.1' } });
  const config = loadConfig({ object }).config;
  const out = new Lines();
  const logger = createLogger('info', out);
  const server = await startServer({ resolvedConfig: config, logger, engine: new RedisEngine(config) });
  t.after(() => server.close());
  const ws = `ws://127.0.0.1:${server.port}/connection/websocket`;

  const c = await RawClient.open(t, { ws });
  await c.connect(await mintToken(SECRET, { sub: 'ann', iat: nowSec() }));
  await own.stop();
  await until('the engine to notice', 3000, async () => !server.switchboard.engine.healthy());

  for (let i = 0; i < 10; i++) {
    const r = await c.command('publish', { channel: 'room', data: { i } });
    assert.deepEqual(r.error && { code: r.error.code, temporary: r.error.temporary }, { code: 100, temporary: true });
    const a = await execute(server.switchboard, 'publish', { channel: 'room', data: { i } });
    assert.equal('error' in a && a.error.code, 100);
  }
  // A connect needs the revocation store: temporary too, so the client retries (and is not dropped).
  const late = await RawClient.open(t, { ws });
  const r = await late.command('connect', { token: await mintToken(SECRET, { sub: 'bob', iat: nowSec() }) });
  assert.equal(r.error?.code, 100);
  assert.equal(r.error?.temporary, true);

  assert.equal(out.count('engine unavailable'), 1, 'one line for 21 refusals of one kind');
  const unavailable = out.lines.find((l) => l.msg === 'engine unavailable')!;
  assert.equal(unavailable.kind, 'disconnected');
  assert.ok(
    out.lines.some((l) => l.engine === 'redis' && l.msg === 'redis command connection lost'),
    'the engine logs through the embedder\u2019s logger',
  );
  assert.ok(out.count('redis command connection error') <= 1, 'reconnect attempts fail every few 100 ms: one line per interval');
  assert.equal(c.closeCode, undefined, 'the connection stays');
});
