import { Disconnects, type Disconnect } from '../protocol/codes.js';

/** A connection as the drain sees it. */
export interface DrainableConnection {
  disconnect(d: Disconnect): void;
}

export interface DrainOptions {
  /** Connections told per batch. */
  readonly batch_size: number;
  /** Pause between batches (ms). */
  readonly batch_interval: number;
  /** After this long (ms) the remaining batches go without pauses. */
  readonly timeout: number;
}

/**
 * The shutdown drain: tells connections to reconnect elsewhere (3001) in
 * batches, so a node's clients do not all reconnect in the same instant;
 * past the deadline the rest are told at once. Resolves when all were told
 * (their writers flush what is queued, then close).
 */
export async function drain(connections: readonly DrainableConnection[], opts: DrainOptions): Promise<void> {
  const size = Math.max(1, opts.batch_size);
  const deadline = Date.now() + opts.timeout;
  for (let i = 0; i < connections.length; i += size) {
    for (const c of connections.slice(i, i + size)) c.disconnect(Disconnects.shutdown);
    if (i + size < connections.length && Date.now() < deadline) await sleep(opts.batch_interval);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
