/**
 * An app backend for shared poll subscriptions, over real HTTP: it signs
 * track signatures (POST /sign, what the SDK's getSignature calls) and
 * answers the server's refresh polls (POST /refresh…) from an in-memory
 * store of items, recording which keys every poll asked for.
 */
import type { ServerResponse } from 'node:http';
import type { SharedPollSubscription } from 'centrifuge';
import { signTrack } from '../../src/sharedpoll/signature.js';
import { type Backend, type RecordedRequest, startBackend } from './backend.js';
import type { TestContextLike } from './scope.js';

export const POLL_SECRET = 'shared-poll-test-secret';

export interface PollItem {
  data: unknown;
  version: number;
}

export type Failure = 'none' | 'error' | 'http500' | 'hang';

export interface PollBackend {
  readonly backend: Backend;
  readonly url: string;
  /** Current state per key; a key absent here is answered as removed. */
  readonly items: Map<string, PollItem>;
  /** Answer versions (versioned mode) or data only (versionless). */
  versioned: boolean;
  /** How refresh polls fail. */
  fail: Failure;
  /** Keys /sign leaves out (revoked). */
  readonly revoked: Set<string>;
  /** Unix ms of every refresh poll, in order (by path). */
  readonly pollTimes: number[];
  /** Sets a key's data, bumping its version. */
  set(key: string, data: unknown): void;
  /** Refresh polls (optionally only those on `path`). */
  polls(path?: string): RecordedRequest[];
  /** How many refresh polls asked for `key` (optionally only on `path`). */
  timesPolled(key: string, path?: string): number;
  /** Number of /sign calls. */
  readonly signCalls: () => number;
  /** A signature the backend would issue (ttl seconds; 0 = never expires). */
  sign(user: string, channel: string, keys: string[], ttl?: number, now?: number): string;
}

export async function startPollBackend(t: TestContextLike, opts: { ttl?: number } = {}): Promise<PollBackend> {
  const items = new Map<string, PollItem>();
  const revoked = new Set<string>();
  const pollTimes: number[] = [];
  let signs = 0;
  const pb: PollBackend = {
    backend: undefined as unknown as Backend,
    url: '',
    items,
    versioned: true,
    fail: 'none',
    revoked,
    pollTimes,
    set(key, data) {
      items.set(key, { data, version: (items.get(key)?.version ?? 0) + 1 });
    },
    polls: (path) => pb.backend.requests.filter((r) => r.path.startsWith('/refresh') && (path === undefined || r.path === path)),
    timesPolled: (key, path) =>
      pb.polls(path).filter((r) => ((r.body.items as Array<{ key: string }>) ?? []).some((i) => i.key === key)).length,
    signCalls: () => signs,
    sign: (user, channel, keys, ttl = opts.ttl ?? 0, now = Date.now()) => signTrack(POLL_SECRET, user, channel, keys, ttl, now),
  };
  const handler = (req: RecordedRequest, res: ServerResponse): unknown => {
    const b = req.body as { user?: string; channel?: string; keys?: string[]; items?: Array<{ key: string }> };
    if (req.path === '/sign') {
      signs++;
      const keys = (b.keys ?? []).filter((k) => !revoked.has(k));
      return { keys, signature: pb.sign(b.user ?? '', b.channel ?? '', keys) };
    }
    pollTimes.push(Date.now());
    if (pb.fail === 'hang') return undefined; // never answered: the server's timeout fires
    if (pb.fail === 'http500') return void res.writeHead(500).end('down');
    if (pb.fail === 'error') return { error: { code: 1000, message: 'backend unavailable' } };
    const out = (b.items ?? []).map(({ key }) => {
      const it = items.get(key);
      if (!it) return { key, removed: true };
      return pb.versioned ? { key, data: it.data, version: it.version } : { key, data: it.data };
    });
    return { result: { items: out } };
  };
  const backend = await startBackend(t, handler);
  Object.assign(pb, { backend, url: backend.url });
  return pb;
}

/** getSignature for the SDK: asks the backend's /sign over HTTP, as a browser app would ask its own backend. */
export function signer(
  pb: PollBackend,
  user: string,
  channel: string,
): (ctx: { keys: string[] }) => Promise<{ keys: string[]; signature: string }> {
  return async (ctx) => {
    const r = await fetch(pb.url + '/sign', { method: 'POST', body: JSON.stringify({ user, channel, keys: ctx.keys }) });
    return (await r.json()) as { keys: string[]; signature: string };
  };
}

export interface Update {
  key: string;
  data: unknown;
  version?: number;
  removed?: boolean;
}

/** Records a shared poll subscription's update events; `latest` holds each key's last data (removed keys deleted). */
export function recordUpdates(sub: SharedPollSubscription): { updates: Update[]; latest: Map<string, unknown>; errors: any[] } {
  const updates: Update[] = [];
  const latest = new Map<string, unknown>();
  const errors: any[] = [];
  sub.on('update', (ctx) => {
    updates.push({ key: ctx.key, data: ctx.data, version: ctx.version, removed: ctx.removed });
    if (ctx.removed) latest.delete(ctx.key);
    else latest.set(ctx.key, ctx.data);
  });
  sub.on('error', (ctx) => errors.push(ctx));
  return { updates, latest, errors };
}
