import type { ClientInfo } from '../../protocol/types.js';
import { presenceStats } from '../memory/presence.js';
import type { PresenceManager, PresenceStats } from '../types.js';
import type { RedisBackend } from './backend.js';
import { decodeInfo, encodeInfo } from './codec.js';

/** Presence entries per refresh script call. */
const PRESENCE_BATCH = 500;

/**
 * Presence in a hash + zset per channel, each entry with its own expiry.
 * This node refreshes its own entries before they expire, so a dead node's
 * entries lapse. An entry is refreshed only once Redis accepted it, and not
 * when it was removed while the add was on its way: a refresh must never
 * bring back what Redis refused or the session already dropped.
 */
export class RedisPresence implements PresenceManager {
  /** This node's entries Redis accepted: channel → client → encoded info. */
  private readonly local = new Map<string, Map<string, string>>();
  /** Adds on their way: channel + client → a token a remove in the meantime clears. */
  private readonly inFlight = new Map<string, object>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly b: RedisBackend) {}

  private get ttl(): number {
    return Math.max(1000, this.b.cfg.presence_ttl);
  }

  private keys(channel: string): [string, string] {
    return [this.b.key('p', channel), this.b.key('pz', channel)];
  }

  start(): void {
    this.timer = setInterval(() => this.refresh(), Math.max(300, Math.floor(this.ttl / 3)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Entries this node keeps alive (for tests and metrics). */
  localCount(channel: string): number {
    return this.local.get(channel)?.size ?? 0;
  }

  async add(channel: string, info: ClientInfo): Promise<void> {
    const enc = encodeInfo(info);
    const ttl = this.ttl;
    const id = channel + '\u0000' + info.client;
    const token = {};
    this.inFlight.set(id, token);
    let mine: boolean;
    try {
      await this.b.run(this.b.shardOf(channel), (s) =>
        s.sbPresenceAdd(...this.keys(channel), String(Date.now() + ttl), String(ttl), info.client, enc),
      );
    } finally {
      mine = this.inFlight.get(id) === token;
      if (mine) this.inFlight.delete(id);
    }
    // Accepted by Redis, and not removed meanwhile: from now on this node keeps it alive.
    if (!mine) return;
    let m = this.local.get(channel);
    if (!m) this.local.set(channel, (m = new Map()));
    m.set(info.client, enc);
  }

  async remove(channel: string, client: string, _user?: string): Promise<void> {
    this.inFlight.delete(channel + '\u0000' + client);
    const m = this.local.get(channel);
    if (m) {
      m.delete(client);
      if (m.size === 0) this.local.delete(channel);
    }
    await this.b.run(this.b.shardOf(channel), (s) => s.sbPresenceRemove(...this.keys(channel), client));
  }

  async get(channel: string): Promise<Map<string, ClientInfo>> {
    const values = await this.b.run(this.b.shardOf(channel), (s) => s.sbPresenceGet(...this.keys(channel), String(Date.now())));
    const out = new Map<string, ClientInfo>();
    for (const v of values) {
      const info = decodeInfo(v);
      out.set(info.client, info);
    }
    return out;
  }

  async stats(channel: string): Promise<PresenceStats> {
    return presenceStats(await this.get(channel));
  }

  /** Pushes the expiry of this node's live entries forward. */
  private refresh(): void {
    const ttl = this.ttl;
    const expireAt = String(Date.now() + ttl);
    const fail = (e: unknown): void => {
      this.b.errors.warn('presence_refresh', { err: String(e) }, 'presence refresh failed; entries may lapse until Redis is back');
    };
    for (const [channel, entries] of this.local) {
      const shard = this.b.shardOf(channel);
      if (!shard.cmdReady) continue;
      const flat: string[] = [];
      for (const [client, enc] of entries) flat.push(client, enc);
      for (let i = 0; i < flat.length; i += PRESENCE_BATCH * 2) {
        this.b
          .run(shard, (s) => s.sbPresenceAdd(...this.keys(channel), expireAt, String(ttl), ...flat.slice(i, i + PRESENCE_BATCH * 2)))
          .catch(fail);
      }
    }
  }
}
