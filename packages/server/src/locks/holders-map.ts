import type { Logger } from '../observability/logger.js';
import type { HolderObserver, HolderValue } from './service.js';

/** What the holders observer needs of the node's map API (map subscriptions, docs/MAPS.md). */
export interface MapWriter {
  mapPublish(channel: string, key: string, data: unknown): Promise<unknown>;
  mapRemove(channel: string, key: string): Promise<unknown>;
}

/** The live holder of a field as the lock store has it now (undefined: none). */
export type HolderLookup = (channel: string, field: string) => Promise<HolderValue | undefined>;

/**
 * Writes lock holders into the map channel `<locks.namespace>:<document>`
 * (map key = field). Writes of one channel leave this node one after
 * another, in the order the leases changed here. A lease's end is written
 * as what the store holds when the write goes out: if another node's
 * client took the field meanwhile, its lease is written instead of a
 * removal, so a removal that lost the race against the next holder's entry
 * (two nodes writing one key) does not wipe that entry.
 */
export function holdersMap(maps: MapWriter, lookup: HolderLookup, log: Logger): HolderObserver {
  const tails = new Map<string, Promise<void>>();
  const chain = (channel: string, write: () => Promise<unknown>): void => {
    const prev = tails.get(channel) ?? Promise.resolve();
    const next = prev
      .then(write)
      .then(
        () => undefined,
        (e: unknown) => log.warn({ channel, err: String(e) }, 'lock holders map write failed'),
      )
      .finally(() => {
        if (tails.get(channel) === next) tails.delete(channel);
      });
    tails.set(channel, next);
  };
  return {
    set: (channel: string, field: string, value: HolderValue) => chain(channel, () => maps.mapPublish(channel, field, value)),
    remove: (channel: string, field: string) =>
      chain(channel, async () => {
        const now = await lookup(channel, field);
        return now ? maps.mapPublish(channel, field, now) : maps.mapRemove(channel, field);
      }),
  };
}
