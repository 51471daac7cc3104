import type { Config } from '../../config/load.js';
import type { Logger } from '../../observability/logger.js';
import { metaTtl } from '../defaults.js';
import { ErrorLog } from '../errorlog.js';
import { EngineUnavailableError } from '../errors.js';
import type { Scripted } from './connection.js';
import { Shard, hash, withTimeout } from './shard.js';

export type RedisConfig = Config['engine']['redis'];

/** Redis answers that mean "busy or failing over, try again", not a fault of ours. */
const TRANSIENT = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)/;

/**
 * What every Redis role shares: the shards, key naming, and running a
 * command so that Redis trouble becomes EngineUnavailableError (logged once
 * per kind per interval) and feeds the shard's circuit breaker.
 */
export class RedisBackend {
  readonly cfg: RedisConfig;
  readonly prefix: string;
  readonly shards: Shard[];
  readonly errors: ErrorLog;
  closed = false;

  constructor(config: Config, log: Logger) {
    this.cfg = config.engine.redis;
    this.prefix = this.cfg.prefix;
    this.errors = new ErrorLog(log);
    const addresses =
      this.cfg.cluster_addresses.length > 0 || this.cfg.sentinel_addresses.length > 0
        ? ['']
        : Array.isArray(this.cfg.address)
          ? this.cfg.address
          : [this.cfg.address];
    if (addresses.length === 0) throw new Error('engine.redis.address: at least one address is needed');
    this.shards = addresses.map((a, i) => new Shard(i, this.cfg, a));
  }

  get log(): Logger {
    return this.errors.log;
  }

  set log(l: Logger) {
    this.errors.log = l;
  }

  /** The shard for a channel's keys and PUB/SUB channel. */
  shardOf(channel: string): Shard {
    const n = this.shards.length;
    return n === 1 ? this.shards[0]! : this.shards[hash(channel) % n]!;
  }

  /** Cluster-wide keys (control, node registry, revocations) live on the first shard. */
  get first(): Shard {
    return this.shards[0]!;
  }

  /** A per-channel key; the hash tag keeps a channel's keys in one Redis Cluster slot. */
  key(kind: string, channel: string): string {
    return `${this.prefix}.${kind}.{${channel}}`;
  }

  /** The stream meta TTL to give Redis: the channel's, or the default (never none: meta must expire). */
  metaTtl(ms: number): number {
    return metaTtl(ms);
  }

  /** Runs a command on a shard unless it is known to be unreachable. */
  async run<T>(shard: Shard, fn: (s: Scripted) => Promise<T>): Promise<T> {
    if (this.closed) throw new EngineUnavailableError('closed');
    if (!shard.cmdReady) throw new EngineUnavailableError('disconnected');
    if (!shard.breaker.allow()) throw new EngineUnavailableError('circuit_open');
    try {
      const r = await fn(shard.scripts);
      shard.breaker.success();
      return r;
    } catch (e) {
      shard.breaker.failure();
      throw this.unavailable(shard, e);
    }
  }

  private unavailable(shard: Shard, e: unknown): EngineUnavailableError {
    const msg = e instanceof Error ? e.message : String(e);
    const where = { shard: shard.index, err: msg };
    if (e instanceof Error && e.name === 'ReplyError' && !TRANSIENT.test(msg)) {
      // Redis refused the command itself (a script error, a wrong type): ours to fix, so at error level.
      this.errors.error('redis_command_failed', where, 'redis command failed');
      return new EngineUnavailableError('failed', msg);
    }
    if (/timed out/i.test(msg)) {
      this.errors.warn('redis_timeout', where, 'redis command timed out');
      return new EngineUnavailableError('timeout', msg);
    }
    this.errors.warn('redis_unavailable', where, 'redis command not served');
    return new EngineUnavailableError(e instanceof Error && e.name === 'ReplyError' ? 'failed' : 'disconnected', msg);
  }

  /** Logs the command connection's state changes, and probes an open breaker so readiness returns without traffic. */
  watch(shard: Shard): void {
    const where = { shard: shard.index };
    let cmdDown = false;
    shard.cmd.on('error', (e: Error) =>
      this.errors.warn(`redis_cmd_error_${shard.index}`, { ...where, err: e.message }, 'redis command connection error'),
    );
    shard.cmd.on('ready', () => {
      if (cmdDown) this.log.info(where, 'redis command connection restored');
      cmdDown = false;
    });
    shard.cmd.on('close', () => {
      if (!cmdDown && !this.closed) this.log.warn(where, 'redis command connection lost');
      cmdDown = true;
    });
    shard.breaker.onChange = (open) => {
      if (!open) {
        this.log.info(where, 'redis circuit breaker closed');
        return;
      }
      this.log.warn(where, 'redis circuit breaker open: failing fast');
      const probe = (): void => {
        if (this.closed || !shard.breaker.open) return;
        if (shard.breaker.allow() && shard.cmdReady) {
          shard.cmd.ping().then(
            () => shard.breaker.success(),
            () => shard.breaker.failure(),
          );
        }
        setTimeout(probe, shard.breaker.cooldownMs).unref();
      };
      setTimeout(probe, shard.breaker.cooldownMs).unref();
    };
  }

  /** Waits for every connection up to connect_timeout; a node that starts while Redis is away keeps trying in the background. */
  async connect(): Promise<void> {
    const ready = Promise.all(this.shards.flatMap((s) => [s.cmd.connect().catch(() => undefined), s.sub.connect().catch(() => undefined)]));
    await withTimeout(ready, Math.max(100, this.cfg.connect_timeout));
  }

  healthy(): boolean {
    if (this.closed) return false;
    for (const s of this.shards) if (!s.cmdReady || !s.subReady || s.breaker.open) return false;
    return true;
  }

  /** Quits every connection (disconnects those that do not answer within a second). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.shards
        .flatMap((s) => [s.cmd, s.sub])
        .map(async (c) => {
          if (c.status === 'ready') {
            const ok = await withTimeout(
              c.quit().catch(() => undefined),
              1000,
            );
            if (ok !== undefined) return;
          }
          c.disconnect();
        }),
    );
  }
}
