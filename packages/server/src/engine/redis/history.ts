import type { Publication } from '../../protocol/types.js';
import type { HistoryOptions, HistoryResult, HistoryStore } from '../types.js';
import type { RedisBackend } from './backend.js';
import { newEpoch } from './broker.js';
import { decodePayload } from './codec.js';
import { readThroughTail, type TailKeeper } from './tail.js';

/**
 * Streams in Redis (XADD by the publish script, read here). A recovery
 * read of a subscribed channel is served from the broker's tail when it
 * holds all of the answer, and a Redis read joins the tail up with what
 * PUB/SUB brought meanwhile.
 */
export class RedisHistory implements HistoryStore {
  constructor(
    private readonly b: RedisBackend,
    /** The broker that keeps the recovery tails of the subscribed channels (Redis PUB/SUB or NATS). */
    private readonly broker: TailKeeper,
  ) {}

  read(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    return readThroughTail(this.broker, channel, opts, () => this.readRedis(channel, opts));
  }

  async remove(channel: string): Promise<void> {
    const shard = this.b.shardOf(channel);
    await this.b.run(shard, () => shard.cmd.del(this.b.key('s', channel)));
  }

  private async readRedis(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const b = this.b;
    const shard = b.shardOf(channel);
    const ttl = opts.historyTtlMs;
    const minTime = ttl > 0 ? Date.now() - ttl : 0;
    const want = opts.limit;
    const out: Publication[] = [];
    let since = opts.since ? String(opts.since.offset) : '';
    let sinceEpoch = opts.since?.epoch ?? '';
    for (;;) {
      const limit = want === undefined ? -1 : want - out.length;
      const [offset, epoch, entries] = await b.run(shard, (s) =>
        s.sbHistory(
          b.key('s', channel),
          b.key('m', channel),
          String(b.metaTtl(opts.historyMetaTtlMs)),
          newEpoch(),
          String(want === 0 ? 0 : limit),
          opts.reverse ? '1' : '0',
          since,
          sinceEpoch,
          b.cfg.replica_wait > 0 ? '1' : '0',
        ),
      );
      const position = { offset: Number(offset), epoch };
      let dropped = 0;
      for (const [id, fields] of entries) {
        const pub = decodePayload(fields[1]!, parseInt(id, 10));
        if (minTime > 0 && pub.time !== undefined && pub.time < minTime) {
          dropped++;
          continue;
        }
        out.push(pub);
      }
      // Forward reads meet expired publications first; when they took
      // places in a limited read, read on past them.
      const more = !opts.reverse && dropped > 0 && limit > 0 && entries.length === limit;
      if (!more || want === 0) return { publications: out, position };
      since = entries[entries.length - 1]![0].split('-')[0]!;
      sinceEpoch = epoch;
    }
  }
}
