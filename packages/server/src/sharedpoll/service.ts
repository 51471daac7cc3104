import { ProxyCaller } from '../auth/proxy.js';
import type { Config, NamespaceConfig } from '../config/load.js';
import type { HubClient } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Errors, ReplyError } from '../protocol/codes.js';
import type { ParamsOf } from '../protocol/params.js';
import type { Publication } from '../protocol/types.js';
import { subClaims } from '../session/claims.js';
import { verifyToken } from '../session/credentials.js';
import type { PollingSession, SharedPollCommands } from '../session/context.js';
import { SharedPollPoller, SharedPollStats, send, sendRemoval, type PollSubscription, type Tracker } from './poller.js';
import { verifyTrack, type SignatureKeys } from './signature.js';

/*
 * Shared poll subscriptions as the `centrifuge` SDK (5.7.4,
 * `newSharedPollSubscription`) speaks them:
 * - subscribe with `type: 4`: no data, no recovery; the reply's `epoch` tells
 *   the SDK whether the versions it holds still mean anything here;
 * - `sub_refresh` with `type: 1` (track): batches of keys, each batch with
 *   the backend's signature over exactly those keys, and the version the
 *   client has of each; the reply carries what the node already has newer
 *   (`items`) and, when signatures expire, `expires`/`ttl` so the SDK asks
 *   its getSignature for a fresh one in time; `untrack` in the same command
 *   drops keys after the batches are verified;
 * - `sub_refresh` with `type: 2` (untrack);
 * - pushes: publications with `key`, `version`, and `removed` for removals.
 */

export const SUBSCRIPTION_TYPE_SHARED_POLL = 4;

interface PollReply {
  readonly result: unknown;
  /** Runs once the reply is queued. */
  readonly after?: () => void;
}
const TRACK = 1;
const UNTRACK = 2;
/** Longest key accepted (the channel name limit's default). */
const MAX_KEY_LENGTH = 255;

export interface SharedPollDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** What the node keeps per connection: its shared poll subscriptions by channel. */
type ClientSubs = Map<string, PollSubscription & { readonly opts: NamespaceConfig['shared_poll'] }>;

export class SharedPollService implements SharedPollCommands {
  private readonly poller: SharedPollPoller | undefined;
  private readonly keys: SignatureKeys;
  private readonly clients = new Map<HubClient, ClientSubs>();

  constructor(
    config: Config,
    private readonly deps: SharedPollDeps,
  ) {
    const sp = config.shared_poll;
    this.keys = {
      secret: sp.hmac_secret_key,
      previous: sp.hmac_previous_secret_key,
      previousValidUntil: sp.hmac_previous_secret_key_valid_until,
    };
    const stats = new SharedPollStats(deps.metrics);
    const endpoint = config.channel.proxy.shared_poll_refresh;
    if (endpoint.endpoint) {
      const caller = new ProxyCaller(
        'shared_poll_refresh',
        { ...endpoint, max_concurrency: Math.max(endpoint.max_concurrency, sp.concurrency_limit) },
        deps.log,
        deps.metrics,
      );
      this.poller = new SharedPollPoller({ caller, stats, metrics: deps.metrics, log: deps.log, concurrency: sp.concurrency_limit });
    }
  }

  /** Whether `client` has a shared poll subscription to `channel`. */
  has(client: HubClient, channel: string): boolean {
    return this.clients.get(client)?.has(channel) ?? false;
  }

  /** A subscribe command to a shared poll namespace, or one with type 4 anywhere. */
  async subscribe(s: PollingSession, p: ParamsOf<'subscribe'>): Promise<PollReply> {
    const { ctx } = s;
    const channel = p.channel;
    const resolved = ctx.channels.resolve(channel);
    const ns = resolved.options;
    if (ns.subscription_type !== 'shared_poll') this.refuse('shared_poll_channel', 'bad request: not a shared poll channel');
    if ((p.type ?? 0) !== SUBSCRIPTION_TYPE_SHARED_POLL)
      this.refuse('shared_poll_type', 'bad request: shared poll channel needs subscription type 4');
    if (!this.poller) throw new ReplyError(Errors.notAvailable);
    if (this.has(s, channel) || s.subs.has(channel)) throw new ReplyError(Errors.alreadySubscribed);
    const limit = ctx.options.channel_limit;
    if (limit > 0 && s.subs.size + (this.clients.get(s)?.size ?? 0) >= limit) {
      ctx.metrics.limits.labels('channel_limit').inc();
      throw new ReplyError(Errors.limitExceeded);
    }
    const open = ctx.options.insecure;
    if (p.token) {
      const payload = await verifyToken(ctx, ctx.credentials.subTokens, p.token, 'subscribe', s);
      subClaims(payload, s.user, channel, ctx.options.token.clock_skew);
    } else if ((resolved.private || resolved.allowedUsers) && !open) {
      throw new ReplyError(Errors.permissionDenied);
    } else if (!open && !(s.user === '' ? ns.allow_subscribe_for_anonymous : ns.allow_subscribe_for_client)) {
      throw new ReplyError(Errors.permissionDenied);
    }
    if (!s.live) throw new ReplyError(Errors.internal);
    if (this.has(s, channel)) throw new ReplyError(Errors.alreadySubscribed);
    let subs = this.clients.get(s);
    if (!subs) {
      subs = new Map();
      this.clients.set(s, subs);
    }
    subs.set(channel, { client: s, channel, keys: new Map(), opts: ns.shared_poll });
    // Versioned: versions come from the backend and mean the same on every node (empty epoch).
    // Versionless: synthetic versions of this process; another epoch makes the SDK forget its versions.
    const epoch = ns.shared_poll.mode === 'versioned' ? '' : this.poller.epoch;
    return { result: { epoch: epoch || undefined } };
  }

  /** A sub_refresh of a shared poll subscription: track (type 1) or untrack (type 2). */
  async subRefresh(s: PollingSession, p: ParamsOf<'sub_refresh'>): Promise<PollReply> {
    const sub = this.clients.get(s)?.get(p.channel);
    if (!sub || !this.poller) throw new ReplyError(Errors.permissionDenied);
    if (p.type === UNTRACK) {
      this.untrack(sub, p.untrack ?? []);
      return { result: {} };
    }
    if (p.type !== TRACK) this.refuse('shared_poll_type', 'bad request: unknown sub_refresh type');
    return this.track(s, sub, p);
  }

  private track(
    s: PollingSession,
    sub: PollSubscription & { readonly opts: NamespaceConfig['shared_poll'] },
    p: ParamsOf<'sub_refresh'>,
  ): PollReply {
    const poller = this.poller!;
    const opts = sub.opts;
    const now = Date.now();
    // Everything is checked before anything changes: a refused track leaves the subscription as it was.
    const wanted = new Map<string, { version: number; expireAt: number }>();
    let minExpiry = 0;
    for (const batch of p.track ?? []) {
      const items = batch.items ?? [];
      const keys = items.map((i) => i.key);
      if (keys.some((k) => k === '' || k.length > MAX_KEY_LENGTH)) this.refuse('shared_poll_key', 'bad request: bad key');
      const sig = verifyTrack(this.keys, batch.signature, s.user, sub.channel, keys);
      if (!sig) {
        this.deps.metrics.badInput.labels('shared_poll_signature').inc();
        throw new ReplyError({ code: Errors.permissionDenied.code, message: 'permission denied: bad track signature' });
      }
      const expireAt = sig.expiresAt * 1000;
      if (expireAt > 0 && now > expireAt + opts.track_expired_extra_delay) {
        this.deps.metrics.badInput.labels('shared_poll_signature_expired').inc();
        throw new ReplyError(Errors.tokenExpired);
      }
      if (expireAt > 0 && (minExpiry === 0 || expireAt < minExpiry)) minExpiry = expireAt;
      for (const it of items) {
        const prev = wanted.get(it.key);
        const version = Math.max(prev?.version ?? 0, it.version ?? 0);
        // A key signed twice keeps the later expiry.
        const exp = prev && (prev.expireAt === 0 || expireAt === 0) ? 0 : Math.max(prev?.expireAt ?? 0, expireAt);
        wanted.set(it.key, { version, expireAt: exp });
      }
    }
    const untrack = p.untrack ?? [];
    // The SDK's replay signs whole batches and untracks what the user dropped since in the same command.
    for (const k of untrack) wanted.delete(k);
    const after = new Set(sub.keys.keys());
    for (const k of wanted.keys()) after.add(k);
    for (const k of untrack) after.delete(k);
    if (after.size > opts.max_keys_per_connection) {
      this.deps.metrics.limits.labels('shared_poll_max_keys_per_connection').inc();
      throw new ReplyError({ code: Errors.limitExceeded.code, message: 'limit exceeded: too many tracked keys' });
    }
    const items: Publication[] = [];
    const tracked: string[] = [];
    for (const [key, w] of wanted) {
      let t: Tracker | undefined = sub.keys.get(key);
      if (t) {
        t.version = Math.max(t.version, w.version);
        t.expireAt = t.expireAt === 0 || w.expireAt === 0 ? w.expireAt : Math.max(t.expireAt, w.expireAt);
      } else {
        t = { version: w.version, expireAt: w.expireAt, pending: false };
        sub.keys.set(key, t);
        poller.track(sub, key, opts);
      }
      t.pending = true;
      tracked.push(key);
      const have = poller.peek(sub.channel, key);
      if (have?.data !== undefined && have.version > t.version) {
        t.version = have.version;
        items.push({ offset: 0, data: have.data, key, version: have.version });
      }
    }
    this.untrack(sub, untrack);
    const ttl = minExpiry > 0 ? Math.max(1, Math.floor((minExpiry - now) / 1000)) : 0;
    return {
      result: { items: items.length > 0 ? s.codec.publications(items) : undefined, expires: ttl > 0 || undefined, ttl: ttl || undefined },
      // Once the reply is queued: what changed meanwhile goes out after it, never before (the SDK would take the older reply item last).
      after: () => this.release(sub, tracked),
    };
  }

  private release(sub: PollSubscription, keys: string[]): void {
    for (const key of keys) {
      const t = sub.keys.get(key);
      if (!t) {
        sendRemoval(sub, key);
        continue;
      }
      t.pending = false;
      const have = this.poller!.peek(sub.channel, key);
      if (have?.data !== undefined && have.version > t.version) {
        t.version = have.version;
        send(sub, { offset: 0, data: have.data, key, version: have.version });
      }
    }
  }

  private untrack(sub: PollSubscription, keys: readonly string[]): void {
    for (const key of keys) {
      if (!sub.keys.delete(key)) continue;
      this.poller?.untrack(sub, key);
    }
  }

  /** An unsubscribe command: true when it was a shared poll subscription. */
  unsubscribe(client: HubClient, channel: string): boolean {
    const subs = this.clients.get(client);
    const sub = subs?.get(channel);
    if (!subs || !sub) return false;
    this.untrack(sub, [...sub.keys.keys()]);
    subs.delete(channel);
    if (subs.size === 0) this.clients.delete(client);
    return true;
  }

  /** The connection closed: all its trackers go. */
  closed(client: HubClient): void {
    const subs = this.clients.get(client);
    if (!subs) return;
    for (const channel of [...subs.keys()]) this.unsubscribe(client, channel);
  }

  stop(): void {
    this.poller?.stop();
  }

  private refuse(kind: string, message: string): never {
    this.deps.metrics.badInput.labels(kind).inc();
    throw new ReplyError({ code: Errors.badRequest.code, message });
  }
}
