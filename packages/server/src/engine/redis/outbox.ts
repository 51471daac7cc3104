import type { OutboxEntry, WebhookOutbox } from '../types.js';
import type { RedisBackend } from './backend.js';
import type { Client } from './connection.js';

/** Appends unless the stream holds `max` undelivered entries. KEYS: stream; ARGV: body, max. Returns 1 or 0. */
const APPEND = `
if redis.call('xlen', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('xadd', KEYS[1], '*', 'b', ARGV[1])
return 1
`;

/** Acks and deletes, so XLEN counts only what is undelivered. KEYS: stream; ARGV: group, ids... */
const ACK = `
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('xack', KEYS[1], ARGV[1], unpack(ids))
return redis.call('xdel', KEYS[1], unpack(ids))
`;

interface OutboxCommands {
  sbOutboxAppend(...args: string[]): Promise<number>;
  sbOutboxAck(...args: string[]): Promise<number>;
}

type StreamEntry = [string, string[]] | null;

/**
 * The webhook outbox as a Redis stream with one consumer group shared by
 * every node (on the first shard, like the other cluster-wide keys): a node
 * reads new entries with XREADGROUP and takes over those another node
 * claimed and left idle (it died) with XAUTOCLAIM. Delivered entries are
 * acked and deleted, so the stream's length is the undelivered count that
 * bounds it.
 */
export class RedisOutbox implements WebhookOutbox {
  private readonly key: string;
  private readonly group = 'webhooks';
  private groupReady = false;

  constructor(private readonly b: RedisBackend) {
    this.key = `${b.prefix}.{webhooks}.outbox`;
    const cmd = b.first.cmd;
    cmd.defineCommand('sbOutboxAppend', { numberOfKeys: 1, lua: APPEND });
    cmd.defineCommand('sbOutboxAck', { numberOfKeys: 1, lua: ACK });
  }

  private commands(c: Client): OutboxCommands {
    return c as unknown as OutboxCommands;
  }

  async append(body: string, maxSize: number): Promise<boolean> {
    const r = await this.b.run(this.b.first, () => this.commands(this.b.first.cmd).sbOutboxAppend(this.key, body, String(maxSize)));
    return r === 1;
  }

  private async ensureGroup(c: Client): Promise<void> {
    if (this.groupReady) return;
    await c.xgroup('CREATE', this.key, this.group, '0', 'MKSTREAM').catch((e: unknown) => {
      if (!String(e).includes('BUSYGROUP')) throw e;
    });
    this.groupReady = true;
  }

  async claim(consumer: string, count: number, reclaimAfterMs: number): Promise<OutboxEntry[]> {
    const c = this.b.first.cmd;
    return this.b.run(this.b.first, async () => {
      await this.ensureGroup(c);
      const out: OutboxEntry[] = [];
      const push = (entries: StreamEntry[]): void => {
        for (const e of entries) {
          // A claimed entry deleted meanwhile comes back as null (Redis < 7) or not at all.
          if (!e || !Array.isArray(e[1])) continue;
          const i = e[1].indexOf('b');
          if (i >= 0 && e[1][i + 1] !== undefined) out.push({ id: e[0], body: e[1][i + 1]! });
        }
      };
      try {
        const stale = (await c.xautoclaim(this.key, this.group, consumer, reclaimAfterMs, '0-0', 'COUNT', count)) as unknown[];
        push((stale[1] ?? []) as StreamEntry[]);
        if (out.length < count) {
          const fresh = (await c.xreadgroup('GROUP', this.group, consumer, 'COUNT', count - out.length, 'STREAMS', this.key, '>')) as Array<
            [string, StreamEntry[]]
          > | null;
          for (const [, entries] of fresh ?? []) push(entries);
        }
      } catch (e) {
        // The stream was deleted (FLUSHDB, a failover to an empty replica): make the group again next time.
        if (String(e).includes('NOGROUP')) this.groupReady = false;
        throw e;
      }
      return out;
    });
  }

  async touch(consumer: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const c = this.b.first.cmd;
    await this.b.run(this.b.first, () => c.call('XCLAIM', this.key, this.group, consumer, '0', ...ids, 'JUSTID'));
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.b.run(this.b.first, () => this.commands(this.b.first.cmd).sbOutboxAck(this.key, this.group, ...ids));
  }

  async size(): Promise<number> {
    return this.b.run(this.b.first, (s) => (s as unknown as Client).xlen(this.key));
  }
}
