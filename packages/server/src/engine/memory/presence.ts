import type { ClientInfo } from '../../protocol/types.js';
import type { PresenceManager, PresenceStats } from '../types.js';

/** Presence in this process: channel → client → info. */
export class MemoryPresence implements PresenceManager {
  private readonly channels = new Map<string, Map<string, ClientInfo>>();

  async add(channel: string, info: ClientInfo): Promise<void> {
    let m = this.channels.get(channel);
    if (!m) this.channels.set(channel, (m = new Map()));
    m.set(info.client, info);
  }

  async remove(channel: string, clientId: string, _user?: string): Promise<void> {
    const m = this.channels.get(channel);
    if (!m) return;
    m.delete(clientId);
    if (m.size === 0) this.channels.delete(channel);
  }

  async get(channel: string): Promise<Map<string, ClientInfo>> {
    return new Map(this.channels.get(channel) ?? []);
  }

  async stats(channel: string): Promise<PresenceStats> {
    return presenceStats(this.channels.get(channel));
  }
}

/** Clients and distinct users of a presence map. */
export function presenceStats(m: ReadonlyMap<string, ClientInfo> | undefined): PresenceStats {
  if (!m) return { numClients: 0, numUsers: 0 };
  const users = new Set<string>();
  for (const info of m.values()) users.add(info.user);
  return { numClients: m.size, numUsers: users.size };
}
