/**
 * A Redis engine as one node of a map test: started with a feed that
 * records what it delivers, closed with the test.
 */
import { loadConfig } from '../../src/config/load.js';
import { RedisEngine } from '../../src/engine/redis/engine.js';
import type { ControlMessage, EngineHandlers } from '../../src/engine/types.js';
import type { Publication } from '../../src/protocol/types.js';
import type { TestContextLike } from './scope.js';

/** What one node's engine delivered, per channel. */
export class Feed implements EngineHandlers {
  readonly pubs: Array<[string, Publication]> = [];
  resyncs = 0;
  onPublication(channel: string, pub: Publication): void {
    this.pubs.push([channel, pub]);
  }
  onJoin(): void {}
  onLeave(): void {}
  onControl(_m: ControlMessage): void {}
  onResync(): void {
    this.resyncs++;
  }
  of(channel: string): Publication[] {
    return this.pubs.filter(([c]) => c === channel).map(([, p]) => p);
  }
}

/** A Redis engine (a node) on `redis` under `prefix`, started with a feed, closed with the test. */
export async function redisNode(
  t: TestContextLike,
  redis: Record<string, unknown>,
  prefix: string,
  cleanupIntervalMs = 100,
): Promise<{ engine: RedisEngine; feed: Feed }> {
  const config = loadConfig({
    object: {
      log: { level: 'error' },
      engine: { type: 'redis', redis: { prefix, connect_timeout: '500ms', io_timeout: '1s', circuit_breaker_cooldown: '200ms', ...redis } },
    },
  }).config;
  const engine = new RedisEngine(config, { maps: { cleanupIntervalMs } });
  const feed = new Feed();
  await engine.start(feed);
  t.after(() => engine.close());
  return { engine, feed };
}
