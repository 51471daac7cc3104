import type { Engine, EngineHandlers, EngineStartOptions } from '../types.js';
import type { MapStoreOptions } from '../map.js';
import { MemoryBroker } from './broker.js';
import { DEFAULT_META_TTL_MS, MemoryHistory } from './history.js';
import { MemoryLocks, MemoryUserStatus } from './locks.js';
import { MemoryMaps } from './maps.js';
import { MemoryOccupancy } from './occupancy.js';
import { MemoryOutbox } from './outbox.js';
import { MemoryPresence } from './presence.js';
import { MemoryRevocations } from './revocations.js';

const SWEEP_INTERVAL_MS = 30_000;

export interface MemoryEngineOptions {
  /** Stream meta lifetime when a channel's history_meta_ttl is 0 (default 30 days, as Centrifugo). */
  readonly defaultHistoryMetaTtlMs?: number;
  /** The map role's options (how often lapsed keys are removed). */
  readonly maps?: MapStoreOptions;
}

/** Single-node engine: every role in this process. No node registry, no shared limiter: one node is all there is. */
export class MemoryEngine implements Engine {
  readonly name = 'memory';
  readonly history: MemoryHistory;
  readonly broker: MemoryBroker;
  readonly presence = new MemoryPresence();
  readonly revocations = new MemoryRevocations();
  readonly outbox = new MemoryOutbox();
  readonly occupancy = new MemoryOccupancy();
  readonly locks = new MemoryLocks();
  readonly userStatus = new MemoryUserStatus();
  readonly maps: MemoryMaps;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(opts: MemoryEngineOptions = {}) {
    this.history = new MemoryHistory(opts.defaultHistoryMetaTtlMs ?? DEFAULT_META_TTL_MS);
    this.broker = new MemoryBroker(this.history);
    this.maps = new MemoryMaps(opts.maps, opts.defaultHistoryMetaTtlMs ?? DEFAULT_META_TTL_MS);
  }

  async start(handlers: EngineHandlers, _opts?: EngineStartOptions): Promise<void> {
    await this.broker.start(handlers);
    this.maps.start(handlers);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Drops what expired: stream meta, idempotency results, revocations. */
  sweep(now = Date.now()): void {
    this.history.sweep(now);
    this.broker.sweep(now);
    this.revocations.sweep(now);
    this.userStatus.sweep();
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.maps.close();
  }
}
