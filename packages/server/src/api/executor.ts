import { EngineUnavailableError } from '../engine/errors.js';
import { Errors, ReplyError, type ProtocolError } from '../protocol/codes.js';
import { Raw, encodeClientInfo, publicationsRaw } from '../protocol/json.js';
import type { StreamPosition } from '../protocol/types.js';
import type { Switchboard } from '../node.js';

export type ApiParams = Record<string, unknown>;
export type ApiReply = { result: unknown } | { error: ProtocolError };

/** The server API methods (Centrifugo v6 shapes). */
export const API_METHODS = [
  'publish',
  'broadcast',
  'subscribe',
  'unsubscribe',
  'disconnect',
  'refresh',
  'presence',
  'presence_stats',
  'history',
  'history_remove',
  'channels',
  'info',
  'batch',
  'revoke_token',
  'invalidate_user_tokens',
] as const;
export type ApiMethod = (typeof API_METHODS)[number];
const METHOD_SET: ReadonlySet<string> = new Set(API_METHODS);

export function isApiMethod(m: string): m is ApiMethod {
  return METHOD_SET.has(m);
}

const bad = (what: string): never => {
  throw new ReplyError({ code: Errors.badRequest.code, message: `bad request: ${what}` });
};

function str(p: ApiParams, key: string, required = true): string | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return required ? bad(`${key} required`) : undefined;
  if (typeof v !== 'string') return bad(`${key} must be a string`);
  return v;
}

function bool(p: ApiParams, key: string): boolean {
  const v = p[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') return bad(`${key} must be a boolean`);
  return v;
}

function int(p: ApiParams, key: string, min = 0): number | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return bad(`${key} must be an integer >= ${min}`);
  return v;
}

function obj(p: ApiParams, key: string): ApiParams | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) return bad(`${key} must be an object`);
  return v as ApiParams;
}

function tags(p: ApiParams): Record<string, string> | undefined {
  const t = obj(p, 'tags');
  if (!t) return undefined;
  for (const v of Object.values(t)) if (typeof v !== 'string') bad('tags values must be strings');
  return t as Record<string, string>;
}

/** `data` or `b64data` → a JSON value to publish. */
function dataOf(p: ApiParams): unknown {
  if (p.data !== undefined) return p.data;
  if (typeof p.b64data === 'string') {
    try {
      return JSON.parse(Buffer.from(p.b64data, 'base64').toString('utf8'));
    } catch {
      return bad('b64data must be base64 of JSON (this server speaks the JSON protocol)');
    }
  }
  return bad('data required');
}

function position(p: ApiParams | undefined): StreamPosition | undefined {
  if (!p) return undefined;
  return { offset: int(p, 'offset') ?? 0, epoch: str(p, 'epoch', false) ?? '' };
}

function target(p: ApiParams) {
  return { user: str(p, 'user', false) ?? '', client: str(p, 'client', false), session: str(p, 'session', false) };
}

/** Runs one server API command; protocol errors come back in `error`, never thrown. */
export async function execute(sb: Switchboard, method: string, params: unknown): Promise<ApiReply> {
  const started = performance.now();
  let result = 'ok';
  try {
    if (!isApiMethod(method)) throw new ReplyError(Errors.methodNotFound);
    if (params === null || params === undefined) params = {};
    if (typeof params !== 'object' || Array.isArray(params)) bad('params must be an object');
    const reply = { result: await run(sb, method, params as ApiParams) };
    return reply;
  } catch (e) {
    if (e instanceof ReplyError) {
      result = String(e.error.code);
      return { error: e.error };
    }
    result = '100';
    if (e instanceof EngineUnavailableError) {
      // Temporary: logged once per kind per interval, not per command.
      if (sb.limits.logOnce.shouldLog('engine:' + e.kind)) sb.log.warn({ method, kind: e.kind, err: e.message }, 'engine unavailable');
      return { error: Errors.internal };
    }
    sb.log.error({ method, err: e instanceof Error ? e.message : String(e) }, 'api command failed');
    return { error: Errors.internal };
  } finally {
    sb.metrics.apiCommands.labels(method.length <= 32 ? method : 'invalid', result).inc();
    sb.metrics.apiDuration.labels(isApiMethod(method) ? method : 'invalid').observe((performance.now() - started) / 1000);
  }
}

async function run(sb: Switchboard, method: ApiMethod, p: ApiParams): Promise<unknown> {
  switch (method) {
    case 'publish': {
      const r = await sb.publish(str(p, 'channel')!, dataOf(p), {
        skipHistory: bool(p, 'skip_history'),
        tags: tags(p),
        idempotencyKey: str(p, 'idempotency_key', false),
      });
      return r.offset > 0 ? { offset: r.offset, epoch: r.epoch } : {};
    }
    case 'broadcast': {
      const channels = p.channels;
      if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === 'string' && c !== '')) {
        bad('channels must be a non-empty array of strings');
      }
      const rs = await sb.broadcast(channels as string[], dataOf(p), {
        skipHistory: bool(p, 'skip_history'),
        tags: tags(p),
        idempotencyKey: str(p, 'idempotency_key', false),
      });
      return {
        responses: rs.map((r) =>
          r instanceof ReplyError ? { error: r.error } : { result: r.offset > 0 ? { offset: r.offset, epoch: r.epoch } : {} },
        ),
      };
    }
    case 'subscribe': {
      const t = target(p);
      if (!t.user && !t.client) bad('user or client required');
      const since = position(obj(p, 'recover_since'));
      await sb.subscribe(t, str(p, 'channel')!, {
        info: p.info !== undefined ? JSON.stringify(p.info) : undefined,
        data: p.data !== undefined ? JSON.stringify(p.data) : undefined,
        recover: since !== undefined,
        since,
      });
      return {};
    }
    case 'unsubscribe': {
      await sb.unsubscribe(target(p), str(p, 'channel')!);
      return {};
    }
    case 'disconnect': {
      const t = target(p);
      const d = obj(p, 'disconnect');
      const whitelist = p.whitelist;
      if (whitelist !== undefined && (!Array.isArray(whitelist) || !whitelist.every((w) => typeof w === 'string')))
        bad('whitelist must be an array of strings');
      const code = d ? int(d, 'code') : undefined;
      if (code !== undefined && (code < 3000 || code > 4999)) bad('disconnect.code must be in 3000..4999');
      await sb.disconnect(
        { ...t, whitelist: whitelist as string[] | undefined },
        code !== undefined ? { code, reason: str(d!, 'reason', false) ?? 'disconnect' } : undefined,
      );
      return {};
    }
    case 'refresh': {
      const t = target(p);
      await sb.refresh(t, { expired: bool(p, 'expired'), expireAt: int(p, 'expire_at'), info: p.info });
      return {};
    }
    case 'presence': {
      const entries = await sb.presence(str(p, 'channel')!);
      const presence: Record<string, Raw> = {};
      for (const [id, info] of entries) presence[id] = new Raw(encodeClientInfo(info));
      return { presence };
    }
    case 'presence_stats': {
      const s = await sb.presenceStats(str(p, 'channel')!);
      return { num_clients: s.numClients, num_users: s.numUsers };
    }
    case 'history': {
      const limit = int(p, 'limit', -1);
      const h = await sb.history(str(p, 'channel')!, {
        // Centrifugo v3+: no limit → only the stream position; -1 → everything kept.
        limit: limit === undefined ? 0 : limit < 0 ? undefined : limit,
        since: position(obj(p, 'since')),
        reverse: bool(p, 'reverse'),
      });
      return { publications: publicationsRaw(h.publications), offset: h.position.offset, epoch: h.position.epoch };
    }
    case 'history_remove': {
      await sb.historyRemove(str(p, 'channel')!);
      return {};
    }
    case 'channels': {
      const chans = await sb.channels(str(p, 'pattern', false));
      const channels: Record<string, { num_clients: number }> = {};
      for (const [name, n] of chans) channels[name] = { num_clients: n };
      return { channels };
    }
    case 'info': {
      const nodes = await sb.info();
      return {
        nodes: nodes.map((n) => ({
          uid: n.uid,
          name: n.name,
          version: n.version,
          num_clients: n.numClients,
          num_users: n.numUsers,
          num_subs: n.numSubs,
          num_channels: n.numChannels,
          uptime: n.uptime,
        })),
      };
    }
    case 'revoke_token': {
      await sb.revoke({ jti: str(p, 'uid')!, expireAt: int(p, 'expire_at') });
      return {};
    }
    case 'invalidate_user_tokens': {
      const before = int(p, 'issued_before') ?? Math.floor(Date.now() / 1000);
      await sb.revoke({ user: str(p, 'user')!, issuedBefore: before, expireAt: int(p, 'expire_at') });
      return {};
    }
    case 'batch': {
      const commands = p.commands;
      if (!Array.isArray(commands)) bad('commands must be an array');
      const list = commands as unknown[];
      if (list.length > 1000) bad('at most 1000 commands in a batch');
      const runOne = async (c: unknown): Promise<unknown> => {
        if (!c || typeof c !== 'object' || Array.isArray(c))
          return { error: { code: 107, message: 'bad request: command must be an object' } };
        const keys = Object.keys(c);
        if (keys.length !== 1 || keys[0] === 'batch') return { error: { code: 107, message: 'bad request: one method per command' } };
        const m = keys[0]!;
        const r = await execute(sb, m, (c as Record<string, unknown>)[m]);
        return 'error' in r ? { error: r.error } : { [m]: r.result };
      };
      const replies = bool(p, 'parallel') ? await Promise.all(list.map(runOne)) : await sequential(list, runOne);
      return { replies };
    }
  }
}

async function sequential<T, R>(xs: readonly T[], f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const x of xs) out.push(await f(x));
  return out;
}
