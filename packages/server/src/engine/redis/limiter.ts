import type { SharedLimiter } from '../types.js';
import type { RedisBackend } from './backend.js';

/** A token bucket in Redis (one script call, Redis's clock), shared by every node. */
export class RedisLimiter implements SharedLimiter {
  constructor(private readonly b: RedisBackend) {}

  async take(key: string, ratePerSecond: number, burst: number): Promise<boolean> {
    const k = this.b.key('rl', key);
    return (await this.b.run(this.b.shardOf(key), (s) => s.sbTakeToken(k, String(ratePerSecond), String(burst)))) === 1;
  }
}
