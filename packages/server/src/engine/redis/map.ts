import type { Publication, RawJSON } from '../../protocol/types.js';
import type {
  MapChannelOptions,
  MapPublishOptions,
  MapRemoveOptions,
  MapStateOptions,
  MapStateResult,
  MapStats,
  MapStore,
  MapStoreOptions,
  MapStreamOptions,
  MapStreamResult,
  MapSuppressReason,
  MapUpdateResult,
} from '../map.js';
import type { RedisBackend } from './backend.js';
import { newEpoch, type RedisBroker } from './broker.js';
import { decodePayload, encodeInfo, encodePayload } from './codec.js';
import type { Client } from './connection.js';
import { MAP_CLAIM, MAP_EXPIRE, MAP_REGISTER, MAP_RESCHEDULE, MAP_STATE, MAP_UPDATE } from './map-scripts.js';
import type { Shard } from './shard.js';

interface MapCommands {
  sbMapUpdate(...args: string[]): Promise<[string, number]>;
  sbMapExpire(...args: string[]): Promise<[number, string, string, string]>;
  sbMapState(...args: string[]): Promise<[string, string, string, string[]]>;
  sbMapRegister(...args: string[]): Promise<number>;
  sbMapClaim(...args: string[]): Promise<string[]>;
  sbMapReschedule(...args: string[]): Promise<number>;
  sbHistory(...args: string[]): Promise<[string, string, Array<[string, string[]]>]>;
}

const COMMANDS: Array<[keyof MapCommands, number, string]> = [
  ['sbMapUpdate', 6, MAP_UPDATE],
  ['sbMapExpire', 5, MAP_EXPIRE],
  ['sbMapState', 5, MAP_STATE],
  ['sbMapRegister', 2, MAP_REGISTER],
  ['sbMapClaim', 2, MAP_CLAIM],
  ['sbMapReschedule', 2, MAP_RESCHEDULE],
];

const SUPPRESSED: Record<number, MapSuppressReason> = { 1: 'idempotency', 2: 'key_exists', 3: 'key_not_found', 4: 'too_many_keys' };

/** Keys removed per channel per sweep script call. */
const EXPIRE_BATCH = 100;
/** Channels claimed per registry call. */
const CLAIM_BATCH = 100;
/** A claimed channel is handed out again after this if its sweep never reported back (the node died). */
const CLAIM_LEASE_MS = 5000;

/**
 * Map channels on Redis (engine/map.ts's MapStore). Per channel, in its
 * hash slot: the state hash (key → "<offset> <payload>"), a sorted set of
 * key expiries, a key index (lexicographic, for pages), and the channel's
 * ordinary stream and meta. Every mutation is one script (map-scripts.ts)
 * that changes the state, counts the offset, appends to the stream and
 * PUBLISHes on the channel's PUB/SUB channel in the broker's encoding, so
 * the broker delivers it to every node like any publication.
 *
 * Per-key TTL: a publish with a TTL first registers the channel in its
 * shard's expiry registry; every node sweeps what is due, and the sweep
 * script removes each lapsed key once however many nodes run it.
 */
export class RedisMaps implements MapStore {
  private readonly cleanupIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly registry: [string, string];

  constructor(
    private readonly b: RedisBackend,
    private readonly broker: RedisBroker,
    opts: MapStoreOptions = {},
  ) {
    this.cleanupIntervalMs = Math.max(50, opts.cleanupIntervalMs ?? 1000);
    this.registry = [`${b.prefix}.mapx.{mapx}`, `${b.prefix}.mapxg.{mapx}`];
    for (const shard of b.shards) for (const [name, numberOfKeys, lua] of COMMANDS) shard.cmd.defineCommand(name, { numberOfKeys, lua });
  }

  private cmds(shard: Shard): MapCommands {
    return shard.cmd as unknown as MapCommands;
  }

  /** Starts sweeping lapsed keys (every node does; each key's removal is sent once). */
  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.cleanupIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The channel's keys, all in its hash slot: stream, meta, state, expiries, key index. */
  private keys(channel: string): { stream: string; meta: string; state: string; expiry: string; index: string } {
    const b = this.b;
    return {
      stream: b.key('s', channel),
      meta: b.key('m', channel),
      state: b.key('mh', channel),
      expiry: b.key('mx', channel),
      index: b.key('mk', channel),
    };
  }

  private get replicaWait(): boolean {
    return this.b.cfg.replica_wait > 0;
  }

  /** Stream key and meta lifetimes as Redis is given them (never 0: they must expire). */
  private lifetimes(opts: MapChannelOptions, keyTtlMs = 0): { meta: number; stream: number } {
    // The state lives as long as the meta, so it must outlive its longest key TTL.
    const meta = Math.max(this.b.metaTtl(opts.metaTtlMs), keyTtlMs + 60_000);
    return { meta, stream: opts.streamTtlMs > 0 ? Math.min(opts.streamTtlMs, meta) : meta };
  }

  async publish(channel: string, key: string, data: RawJSON, opts: MapPublishOptions): Promise<MapUpdateResult> {
    const payload = encodePayload(data, Date.now(), opts.info, opts.tags, opts.delta, undefined, key);
    const keyTtl = opts.keyTtlMs > 0 ? opts.keyTtlMs : 0;
    // Registered before the key exists: a failure here fails the publish, so no key can lapse unswept.
    if (keyTtl > 0) await this.register(channel, Date.now() + keyTtl);
    return this.update(channel, key, payload, opts, {
      keyTtl,
      remove: false,
      keyMode: opts.keyMode ?? '',
      maxKeys: opts.maxKeys ?? 0,
      refresh: opts.refreshTtlOnSuppress === true,
    });
  }

  async remove(channel: string, key: string, opts: MapRemoveOptions): Promise<MapUpdateResult> {
    // The script builds the removal (it carries the removed entry's tags): it gets the remover's info.
    const payload = opts.info ? encodeInfo(opts.info) : '';
    return this.update(channel, key, payload, opts, { keyTtl: 0, remove: true, keyMode: '', maxKeys: 0, refresh: false });
  }

  private async update(
    channel: string,
    key: string,
    payload: string,
    opts: MapChannelOptions & { idempotencyKey?: string; idempotentResultTtlMs?: number },
    m: { keyTtl: number; remove: boolean; keyMode: string; maxKeys: number; refresh: boolean },
  ): Promise<MapUpdateResult> {
    const b = this.b;
    const shard = b.shardOf(channel);
    const k = this.keys(channel);
    const life = this.lifetimes(opts, m.keyTtl);
    const streamSize = opts.streamSize > 0 ? opts.streamSize : 0;
    const hold = streamSize > 0 && this.replicaWait;
    const idemTtl = opts.idempotentResultTtlMs || b.cfg.idempotent_result_ttl || 300_000;
    const [res, status] = await b.run(shard, () =>
      this.cmds(shard).sbMapUpdate(
        k.stream,
        k.meta,
        // Always a key of the channel's slot (never ""), so the script runs on Redis Cluster.
        `${b.key('i', channel)}.${opts.idempotencyKey ?? ''}`,
        k.state,
        k.expiry,
        k.index,
        key,
        payload,
        String(streamSize),
        String(life.stream),
        String(life.meta),
        this.broker.pubsubChannel(channel),
        newEpoch(),
        String(idemTtl),
        opts.idempotencyKey ? '1' : '0',
        String(m.keyTtl),
        m.remove ? '1' : '0',
        m.keyMode,
        hold ? '1' : '0',
        String(m.maxKeys),
        m.refresh ? '1' : '0',
      ),
    );
    const sp = res.indexOf(' ');
    const position = { offset: Number(res.slice(0, sp)), epoch: res.slice(sp + 1) };
    // A repeated idempotent mutation is confirmed again: the first attempt may have failed in WAIT.
    if (hold && (status === 0 || status === 1)) await this.broker.release(shard, channel, k.stream, k.meta, position);
    if (status === 0) return position;
    return { ...position, suppressed: true, suppressReason: SUPPRESSED[status] ?? 'key_not_found' };
  }

  async readState(channel: string, opts: MapStateOptions): Promise<MapStateResult> {
    const b = this.b;
    const shard = b.shardOf(channel);
    const k = this.keys(channel);
    const single = opts.key !== undefined;
    const [offset, epoch, cursor, flat] = await b.run(shard, () =>
      this.cmds(shard).sbMapState(
        k.stream,
        k.meta,
        k.state,
        k.expiry,
        k.index,
        single ? '' : (opts.cursor ?? ''),
        String(Math.max(1, opts.limit)),
        String(b.metaTtl(opts.metaTtlMs)),
        newEpoch(),
        this.replicaWait ? '1' : '0',
        single ? '1' : '0',
        opts.key ?? '',
      ),
    );
    const entries: Publication[] = [];
    for (let i = 0; i < flat.length; i += 2) entries.push(stateEntry(flat[i]!, flat[i + 1]!));
    return { entries, cursor: single ? '' : cursor, position: { offset: Number(offset), epoch } };
  }

  async readStream(channel: string, opts: MapStreamOptions): Promise<MapStreamResult> {
    const b = this.b;
    const shard = b.shardOf(channel);
    const k = this.keys(channel);
    const since = opts.since;
    const [offset, epoch, entries] = await b.run(shard, () =>
      this.cmds(shard).sbHistory(
        k.stream,
        k.meta,
        String(b.metaTtl(opts.metaTtlMs)),
        newEpoch(),
        String(opts.limit === undefined ? -1 : opts.limit),
        '0',
        since ? String(since.offset) : '',
        since?.epoch ?? '',
        this.replicaWait ? '1' : '0',
      ),
    );
    const position = { offset: Number(offset), epoch };
    if (since && (since.epoch !== epoch || since.offset > position.offset)) return { publications: [], position, recoverable: false };
    const minTime = opts.streamTtlMs > 0 ? Date.now() - opts.streamTtlMs : 0;
    const publications: Publication[] = [];
    for (const [id, fields] of entries) {
      const pub = decodePayload(fields[1]!, parseInt(id, 10));
      if (minTime > 0 && (pub.time ?? 0) < minTime) continue;
      publications.push(pub);
    }
    if (since && since.offset < position.offset && opts.limit !== 0) {
      // Continuable only when the entry right after `since` is still there.
      if (publications[0]?.offset !== since.offset + 1) return { publications: [], position, recoverable: false };
    }
    return { publications, position, recoverable: true };
  }

  async stats(channel: string): Promise<MapStats> {
    const shard = this.b.shardOf(channel);
    const numKeys = await this.b.run(shard, () => (shard.cmd as Client).hlen(this.b.key('mh', channel)));
    return { numKeys };
  }

  async clear(channel: string): Promise<void> {
    const shard = this.b.shardOf(channel);
    const k = this.keys(channel);
    // One DEL of keys in one slot: atomic, and fine on Redis Cluster.
    await this.b.run(shard, () => (shard.cmd as Client).del(k.stream, k.meta, k.state, k.expiry, k.index));
  }

  /** Puts the channel in its shard's expiry registry (due no later than `at`). */
  private async register(channel: string, at: number): Promise<void> {
    const shard = this.b.shardOf(channel);
    await this.b.run(shard, () => this.cmds(shard).sbMapRegister(...this.registry, channel, String(at)));
  }

  /** One sweep: every shard's due channels, their lapsed keys removed (and the removals sent). */
  async sweep(): Promise<void> {
    if (this.sweeping || this.b.closed) return;
    this.sweeping = true;
    try {
      await Promise.all(this.b.shards.map((s) => this.sweepShard(s)));
    } catch (e) {
      this.b.errors.warn('map_sweep', { err: String(e) }, 'map key expiry sweep failed; retrying');
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepShard(shard: Shard): Promise<void> {
    if (!shard.cmdReady) return;
    for (;;) {
      const claimed = await this.b.run(shard, () =>
        this.cmds(shard).sbMapClaim(...this.registry, String(CLAIM_BATCH), String(CLAIM_LEASE_MS)),
      );
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < claimed.length; i += 2) jobs.push(this.expireChannel(shard, claimed[i]!, claimed[i + 1]!));
      await Promise.all(jobs);
      if (claimed.length < CLAIM_BATCH * 2) return;
    }
  }

  private async expireChannel(shard: Shard, channel: string, gen: string): Promise<void> {
    const b = this.b;
    const k = this.keys(channel);
    let next = '-1';
    for (;;) {
      const [removed, nxt, top, held] = await b.run(shard, () =>
        this.cmds(shard).sbMapExpire(
          k.stream,
          k.meta,
          k.state,
          k.expiry,
          k.index,
          String(EXPIRE_BATCH),
          this.broker.pubsubChannel(channel),
          newEpoch(),
          this.replicaWait ? '1' : '0',
          String(b.metaTtl(0)),
        ),
      );
      next = nxt;
      if (held === '1' && removed > 0) {
        const sp = top.indexOf(' ');
        await this.broker.release(shard, channel, k.stream, k.meta, { offset: Number(top.slice(0, sp)), epoch: top.slice(sp + 1) });
      }
      if (removed < EXPIRE_BATCH) break;
    }
    await b.run(shard, () => this.cmds(shard).sbMapReschedule(...this.registry, channel, gen, next));
  }
}

/** A state hash value "<offset> <payload>" as the entry's publication. */
function stateEntry(key: string, value: string): Publication {
  const sp = value.indexOf(' ');
  const pub = decodePayload(value, Number(value.slice(0, sp)), sp + 1);
  return pub.key === key ? pub : { ...pub, key };
}
