import type { NamespaceConfig } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { ClientInfo } from '../protocol/types.js';
import type { MapService } from './service.js';

/** A connection's entry in a map_clients channel, or a user's in a map_users one, kept alive by this node. */
interface Entry {
  readonly channel: string;
  readonly key: string;
  readonly users: boolean;
  info: ClientInfo | undefined;
  /** map_users: this node's subscriptions of the user to the source channel. */
  count: number;
}

/**
 * Map presence, server-managed: a subscription to a channel whose namespace
 * names a `map_clients_presence_channel_prefix` puts an entry keyed by the
 * client id (with its ClientInfo) into `prefix + channel`, removed when the
 * subscription ends; `map_users_presence_channel_prefix` does the same per
 * user, and the user's entry lapses `key_ttl` after the user's last
 * subscription anywhere ended (another node may still hold one, so it is
 * never removed outright). Entries of this node's subscriptions are
 * published again before their TTL runs out (a missed removal lapses).
 */
export class MapPresence {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maps: MapService,
    private readonly log: Logger,
  ) {}

  /** True when subscriptions of the namespace keep map presence. */
  static wanted(ns: NamespaceConfig): boolean {
    return ns.map_clients_presence_channel_prefix !== '' || ns.map_users_presence_channel_prefix !== '';
  }

  /** Keeps the entries alive every `intervalMs` (a third of the shortest presence key_ttl is a good pick). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.refresh(), Math.max(200, intervalMs));
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  joined(channel: string, ns: NamespaceConfig, info: ClientInfo): void {
    const cp = ns.map_clients_presence_channel_prefix;
    if (cp !== '') {
      const e: Entry = { channel: cp + channel, key: info.client, users: false, info, count: 1 };
      this.entries.set(id(e.channel, e.key), e);
      this.put(e, false);
    }
    const up = ns.map_users_presence_channel_prefix;
    if (up !== '' && info.user !== '') {
      const k = id(up + channel, info.user);
      const e = this.entries.get(k);
      if (e) e.count++;
      else {
        const ne: Entry = { channel: up + channel, key: info.user, users: true, info: undefined, count: 1 };
        this.entries.set(k, ne);
        this.put(ne, false);
      }
    }
  }

  left(channel: string, ns: NamespaceConfig, info: ClientInfo): void {
    const cp = ns.map_clients_presence_channel_prefix;
    if (cp !== '') {
      const k = id(cp + channel, info.client);
      if (this.entries.delete(k)) {
        this.maps.remove(cp + channel, info.client, {}, this.nsOf(cp + channel)).catch((e: unknown) => this.warn(cp + channel, e));
      }
    }
    const up = ns.map_users_presence_channel_prefix;
    if (up !== '' && info.user !== '') {
      const k = id(up + channel, info.user);
      const e = this.entries.get(k);
      // The entry lapses by its TTL: the user may still be subscribed on another node.
      if (e && --e.count <= 0) this.entries.delete(k);
    }
  }

  /** Entries this node keeps alive (tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private refresh(): void {
    for (const e of this.entries.values()) this.put(e, true);
  }

  /** Publishes the entry; a keep-alive (and any user entry) only extends the TTL of an entry still there. */
  private put(e: Entry, keepAlive: boolean): void {
    let ns: NamespaceConfig;
    try {
      ns = this.nsOf(e.channel);
    } catch (err) {
      return this.warn(e.channel, err);
    }
    const data = 'null';
    const p =
      keepAlive || e.users
        ? this.maps.publish(e.channel, e.key, data, { info: e.info, keyMode: 'if_new', refreshTtlOnSuppress: true }, ns)
        : this.maps.publish(e.channel, e.key, data, { info: e.info }, ns);
    p.catch((err: unknown) => this.warn(e.channel, err));
  }

  private nsOf(channel: string): NamespaceConfig {
    return this.maps.mapNamespace(channel, ['map_clients', 'map_users']);
  }

  private warn(channel: string, err: unknown): void {
    this.log.warn({ channel, err: err instanceof Error ? err.message : String(err) }, 'map presence update failed');
  }
}

function id(channel: string, key: string): string {
  return channel + '\u0000' + key;
}
