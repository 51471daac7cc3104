import type { Config } from '../../config/load.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import type { Engine, EngineHandlers, EngineStartOptions } from '../types.js';
import { RedisBackend } from './backend.js';
import { RedisBroker } from './broker.js';
import { RedisHistory } from './history.js';
import { RedisLimiter } from './limiter.js';
import { RedisLocks, RedisUserStatus } from './locks.js';
import { RedisNodes } from './nodes.js';
import { RedisOccupancy } from './occupancy.js';
import { RedisOutbox } from './outbox.js';
import { RedisPresence } from './presence.js';
import { RedisRevocations } from './revocations.js';

export interface RedisEngineOptions {
  /** Where the engine logs until `start` hands it the embedder's logger (default: a pino logger at config.log.level). */
  readonly log?: Logger;
}

/**
 * Engine over Redis: every role shares one set of shards (RedisBackend).
 *
 * Faults: while a shard is unreachable its commands fail at once with
 * EngineUnavailableError (a command in flight fails after io_timeout),
 * `healthy()` is false and a circuit breaker stops sending after repeated
 * failures.
 */
export class RedisEngine implements Engine {
  readonly name = 'redis';
  readonly broker: RedisBroker;
  readonly history: RedisHistory;
  readonly presence: RedisPresence;
  readonly nodes: RedisNodes;
  readonly limiter: RedisLimiter;
  readonly revocations: RedisRevocations;
  readonly outbox: RedisOutbox;
  readonly occupancy: RedisOccupancy;
  readonly locks: RedisLocks;
  readonly userStatus: RedisUserStatus;
  private readonly backend: RedisBackend;

  constructor(config: Config, opts: RedisEngineOptions = {}) {
    const log = (opts.log ?? createLogger(config.log.level)).child({ engine: 'redis' });
    const b = (this.backend = new RedisBackend(config, log));
    this.broker = new RedisBroker(b, config.client.recovery_max_publication_limit);
    this.history = new RedisHistory(b, this.broker);
    this.presence = new RedisPresence(b);
    this.nodes = new RedisNodes(b, this.broker);
    this.limiter = new RedisLimiter(b);
    this.revocations = new RedisRevocations(b);
    this.outbox = new RedisOutbox(b);
    this.occupancy = new RedisOccupancy(b);
    this.locks = new RedisLocks(b);
    this.userStatus = new RedisUserStatus(b);
  }

  async start(handlers: EngineHandlers, opts: EngineStartOptions = {}): Promise<void> {
    const b = this.backend;
    if (opts.log) b.log = opts.log.child({ engine: 'redis' });
    for (const shard of b.shards) b.watch(shard);
    await this.broker.start(handlers);
    // A node that starts while Redis is away serves what it can, reports not ready, and keeps trying.
    await b.connect();
    if (!this.healthy()) b.log.warn('redis not reachable at start; retrying in the background');
    this.presence.start();
  }

  healthy(): boolean {
    return this.backend.healthy();
  }

  async close(): Promise<void> {
    if (this.backend.closed) return;
    this.presence.stop();
    this.broker.stop();
    await this.nodes.leave();
    await this.backend.close();
  }
}
