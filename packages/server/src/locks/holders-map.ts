import type { Logger } from '../observability/logger.js';
import type { HolderObserver, HolderValue } from './service.js';

/** What the holders observer needs of the node's map API (map subscriptions, docs/MAPS.md). */
export interface MapWriter {
  mapPublish(channel: string, key: string, data: unknown): Promise<unknown>;
  mapRemove(channel: string, key: string): Promise<unknown>;
}

/**
 * Writes lock holders into the map channel `<locks.namespace>:<document>`
 * (map key = field). Writes of one channel leave this node one after
 * another, in the order the leases changed here.
 */
export function holdersMap(maps: MapWriter, log: Logger): HolderObserver {
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
    remove: (channel: string, field: string) => chain(channel, () => maps.mapRemove(channel, field)),
  };
}
