import { RedisNodes } from '../redis/nodes.js';
import type { RedisBackend } from '../redis/backend.js';
import type { RedisBroker } from '../redis/broker.js';
import type { NatsBroker } from './broker.js';

/**
 * The node registry stays in Redis; the channels with subscribers are asked
 * of every node over NATS (there is no PUBSUB CHANNELS to read): each node
 * answers with its own, and the answers of the registered nodes are joined.
 */
export class NatsNodes extends RedisNodes {
  constructor(
    b: RedisBackend,
    control: RedisBroker,
    private readonly nats: NatsBroker,
    private readonly waitMs: number,
  ) {
    super(b, control);
  }

  override async channels(): Promise<string[]> {
    const nodes = await this.list();
    return this.nats.gatherChannels(nodes.length, this.waitMs);
  }
}
