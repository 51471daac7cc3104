import type { ClientInfo, Publication, RawJSON } from '../../protocol/types.js';
import type { Broker, ControlMessage, EngineHandlers, PublishOptions, PublishResult } from '../types.js';
import type { MemoryHistory } from './history.js';

const DEFAULT_IDEMPOTENT_TTL_MS = 5 * 60_000;

/** Fan-out within one process: a publish appends to history and delivers, synchronously, in offset order. */
export class MemoryBroker implements Broker {
  private handlers: EngineHandlers | undefined;
  private readonly idempotent = new Map<string, { result: PublishResult; expiresAt: number }>();

  constructor(private readonly history: MemoryHistory) {}

  async start(handlers: EngineHandlers): Promise<void> {
    this.handlers = handlers;
  }

  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const now = Date.now();
    if (!opts.idempotencyKey) return this.publishNow(channel, data, opts, now);
    const key = channel + '\u0000' + opts.idempotencyKey;
    const prev = this.idempotent.get(key);
    if (prev && prev.expiresAt > now) return { ...prev.result, duplicate: true };
    const result = this.publishNow(channel, data, opts, now);
    this.idempotent.set(key, { result, expiresAt: now + (opts.idempotentResultTtlMs || DEFAULT_IDEMPOTENT_TTL_MS) });
    return result;
  }

  private publishNow(channel: string, data: RawJSON, opts: PublishOptions, now: number): PublishResult {
    const key = opts.conflationKey;
    const make = (offset: number): Publication => ({
      offset,
      data,
      info: opts.info,
      tags: opts.tags,
      time: now,
      ...(opts.delta ? { delta: true } : {}),
      ...(key !== undefined ? { conflationKey: key } : {}),
    });
    const withHistory = opts.historySize > 0 && opts.historyTtlMs > 0;
    const pub = withHistory ? this.history.append(channel, make, opts.historySize, opts.historyMetaTtlMs, now) : make(0);
    this.handlers?.onPublication(channel, pub);
    return { offset: pub.offset, epoch: withHistory ? this.history.epochOf(channel) : '' };
  }

  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    this.handlers?.onJoin(channel, info);
  }

  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    this.handlers?.onLeave(channel, info);
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    this.handlers?.onControl(msg);
  }

  // One process: every channel's publications reach this node already.
  async subscribe(_channel: string): Promise<void> {}
  async unsubscribe(_channel: string): Promise<void> {}

  /** Forgets idempotency results past their window. */
  sweep(now = Date.now()): void {
    for (const [k, v] of this.idempotent) if (v.expiresAt <= now) this.idempotent.delete(k);
  }
}
