import type { Config } from '../../config/load.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { NatsBroker } from '../nats/broker.js';
import { JetStreamHistory } from '../nats/jetstream.js';
import { NatsNodes } from '../nats/nodes.js';
import type { Broker, Engine, EngineHandlers, EngineStartOptions, HistoryStore, MapStoreOptions } from '../types.js';
import { RedisBackend } from './backend.js';
import { RedisBroker } from './broker.js';
import { RedisHistory } from './history.js';
import { RedisLimiter } from './limiter.js';
import { RedisMaps } from './map.js';
import { RedisLocks, RedisUserStatus } from './locks.js';
import { RedisNodes } from './nodes.js';
import { RedisOccupancy } from './occupancy.js';
import { RedisOutbox } from './outbox.js';
import { RedisPresence } from './presence.js';
import { RedisRevocations } from './revocations.js';

export interface RedisEngineOptions {
  /** Where the engine logs until `start` hands it the embedder's logger (default: a pino logger at config.log.level). */
  readonly log?: Logger;
  /** The map role's options (how often lapsed keys are swept). */
  readonly maps?: MapStoreOptions;
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
  /** Redis PUB/SUB, or NATS with engine.broker "nats" (control messages stay on Redis). */
  readonly broker: Broker;
  /** Redis streams, or one JetStream stream with engine.nats.history "jetstream". */
  readonly history: HistoryStore;
  readonly presence: RedisPresence;
  readonly nodes: RedisNodes;
  readonly limiter: RedisLimiter;
  readonly revocations: RedisRevocations;
  readonly outbox: RedisOutbox;
  readonly occupancy: RedisOccupancy;
  readonly maps: RedisMaps;
  readonly locks: RedisLocks;
  readonly userStatus: RedisUserStatus;
  private readonly backend: RedisBackend;
  private readonly redisBroker: RedisBroker;
  private readonly nats: NatsBroker | undefined;

  constructor(config: Config, opts: RedisEngineOptions = {}) {
    const log = (opts.log ?? createLogger(config.log.level)).child({ engine: 'redis' });
    const b = (this.backend = new RedisBackend(config, log));
    const limit = config.client.recovery_max_publication_limit;
    const redis = (this.redisBroker = new RedisBroker(b, limit));
    const nats = (this.nats = config.engine.broker === 'nats' ? new NatsBroker(config.engine.nats, redis, b.errors, limit) : undefined);
    this.broker = nats ?? redis;
    const js =
      nats && config.engine.nats.history === 'jetstream'
        ? new JetStreamHistory(
            config.engine.nats.jetstream,
            config.engine.nats.prefix,
            nats,
            b.errors,
            config.engine.redis.idempotent_result_ttl,
          )
        : undefined;
    if (nats && js) {
      nats.appender = (channel, payload, o, send) => js.append(channel, payload, o, send);
      nats.onReconnect = () => js.invalidate();
    }
    const store: HistoryStore = js ?? new RedisHistory(b, nats ?? redis);
    this.history = {
      read: (channel, opts) => store.read(channel, opts),
      remove: async (channel) => {
        await store.remove(channel);
        // This node's tail at once; every other node's through a control message.
        this.dropTail(channel);
        await this.broker
          .publishControl({ type: 'history_removed', channel })
          .catch((e: unknown) =>
            b.errors.warn(
              'history_removed',
              { channel, err: String(e) },
              'other nodes not told of a history removal: their recovery tails age out in 60 s',
            ),
          );
      },
    };
    this.presence = new RedisPresence(b);
    this.nodes = nats ? new NatsNodes(b, redis, nats, Math.max(100, config.engine.redis.io_timeout)) : new RedisNodes(b, redis);
    if (nats) {
      const history = this.history;
      nats.position = async (channel) => (await history.read(channel, { limit: 0, historyTtlMs: 0, historyMetaTtlMs: 0 })).position;
    }
    this.limiter = new RedisLimiter(b);
    this.revocations = new RedisRevocations(b);
    this.outbox = new RedisOutbox(b);
    this.occupancy = new RedisOccupancy(b);
    this.maps = new RedisMaps(b, this.redisBroker, opts.maps);
    this.locks = new RedisLocks(b);
    this.userStatus = new RedisUserStatus(b);
  }

  /** Drops this node's recovery tail of the channel (its history was removed). */
  private dropTail(channel: string): void {
    (this.nats ?? this.redisBroker).tails.get(channel)?.reset('');
  }

  async start(handlers: EngineHandlers, opts: EngineStartOptions = {}): Promise<void> {
    const b = this.backend;
    if (opts.log) b.log = opts.log.child({ engine: 'redis' });
    for (const shard of b.shards) b.watch(shard);
    // The engine's own control message (history_removed) stops here; the rest goes to the node.
    await this.broker.start({
      onPublication: (channel, pub) => handlers.onPublication(channel, pub),
      onJoin: (channel, info) => handlers.onJoin(channel, info),
      onLeave: (channel, info) => handlers.onLeave(channel, info),
      onControl: (msg) => (msg.type === 'history_removed' ? this.dropTail(msg.channel) : handlers.onControl(msg)),
      onResync: handlers.onResync ? (channels) => handlers.onResync!(channels) : undefined,
    });
    // A node that starts while Redis is away serves what it can, reports not ready, and keeps trying.
    await b.connect();
    if (!b.healthy()) b.log.warn('redis not reachable at start; retrying in the background');
    this.presence.start();
    this.maps.start();
  }

  healthy(): boolean {
    return this.backend.healthy() && (this.nats?.healthy() ?? true);
  }

  async close(): Promise<void> {
    if (this.backend.closed) return;
    this.presence.stop();
    this.maps.stop();
    this.redisBroker.stop();
    await this.nats?.close();
    await this.nodes.leave();
    await this.backend.close();
  }
}
