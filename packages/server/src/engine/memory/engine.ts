import type { ClientInfo, Publication, RawJSON } from '../../protocol/types.js';
import type {
  ControlMessage,
  Engine,
  EngineHandlers,
  HistoryOptions,
  HistoryResult,
  PresenceStats,
  PresenceStore,
  PublishOptions,
  PublishResult,
} from '../types.js';
import { MemoryStream } from './history.js';

const DEFAULT_IDEMPOTENT_TTL_MS = 5 * 60_000;
const SWEEP_INTERVAL_MS = 30_000;

/** Single-node engine: broker, history and presence in this process. */
export class MemoryEngine implements Engine {
  readonly name = 'memory';
  private handlers: EngineHandlers | undefined;
  private readonly streams = new Map<string, MemoryStream>();
  private readonly idempotent = new Map<string, { result: PublishResult; expiresAt: number }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  readonly presence = new MemoryPresence();

  async start(handlers: EngineHandlers): Promise<void> {
    this.handlers = handlers;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const now = Date.now();
    if (opts.idempotencyKey) {
      const key = channel + '\u0000' + opts.idempotencyKey;
      const prev = this.idempotent.get(key);
      if (prev && prev.expiresAt > now) return { ...prev.result, duplicate: true };
      const result = this.publishNow(channel, data, opts, now);
      this.idempotent.set(key, { result, expiresAt: now + (opts.idempotentResultTtlMs || DEFAULT_IDEMPOTENT_TTL_MS) });
      return result;
    }
    return this.publishNow(channel, data, opts, now);
  }

  private publishNow(channel: string, data: RawJSON, opts: PublishOptions, now: number): PublishResult {
    const withHistory = opts.historySize > 0 && opts.historyTtlMs > 0;
    let offset = 0;
    let epoch = '';
    let stream: MemoryStream | undefined;
    if (withHistory) {
      stream = this.stream(channel, now, opts.historyMetaTtlMs, true)!;
      offset = ++stream.offset;
      epoch = stream.epoch;
    }
    const pub: Publication = { offset, data, info: opts.info, tags: opts.tags, time: now };
    if (stream) stream.append(pub, opts.historySize);
    this.handlers?.onPublication(channel, pub);
    return { offset, epoch };
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

  async history(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const now = Date.now();
    // Reading a stream creates it, as Centrifugo does: the position (and
    // epoch) a client sees before the first publication stays valid.
    const stream = this.stream(channel, now, opts.historyMetaTtlMs, true)!;
    const position = stream.position();
    if (opts.limit === 0) return { publications: [], position };
    if (opts.since && opts.since.epoch !== stream.epoch) return { publications: [], position };
    const pubs = stream.query(opts.since ? opts.since.offset : 0, now, opts.historyTtlMs, opts.limit, opts.reverse);
    return { publications: pubs, position };
  }

  async removeHistory(channel: string): Promise<void> {
    this.streams.get(channel)?.clear();
  }

  async subscribe(_channel: string): Promise<void> {}
  async unsubscribe(_channel: string): Promise<void> {}

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  private stream(channel: string, now: number, metaTtlMs: number, create: boolean): MemoryStream | undefined {
    let s = this.streams.get(channel);
    if (s && s.metaExpiresAt <= now) {
      this.streams.delete(channel);
      s = undefined;
    }
    if (!s) {
      if (!create) return undefined;
      s = new MemoryStream();
      this.streams.set(channel, s);
    }
    s.metaExpiresAt = metaTtlMs > 0 ? now + metaTtlMs : Infinity;
    return s;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [ch, s] of this.streams) if (s.metaExpiresAt <= now) this.streams.delete(ch);
    for (const [k, v] of this.idempotent) if (v.expiresAt <= now) this.idempotent.delete(k);
  }
}

export class MemoryPresence implements PresenceStore {
  private readonly channels = new Map<string, Map<string, ClientInfo>>();

  async add(channel: string, info: ClientInfo): Promise<void> {
    let m = this.channels.get(channel);
    if (!m) this.channels.set(channel, (m = new Map()));
    m.set(info.client, info);
  }

  async remove(channel: string, clientId: string): Promise<void> {
    const m = this.channels.get(channel);
    if (!m) return;
    m.delete(clientId);
    if (m.size === 0) this.channels.delete(channel);
  }

  async get(channel: string): Promise<Map<string, ClientInfo>> {
    return new Map(this.channels.get(channel) ?? []);
  }

  async stats(channel: string): Promise<PresenceStats> {
    const m = this.channels.get(channel);
    if (!m) return { numClients: 0, numUsers: 0 };
    const users = new Set<string>();
    for (const info of m.values()) users.add(info.user);
    return { numClients: m.size, numUsers: users.size };
  }
}
