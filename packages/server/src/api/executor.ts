import { EngineUnavailableError } from '../engine/errors.js';
import { Errors, ReplyError, type ProtocolError } from '../protocol/codes.js';
import { bytesToValue } from '../protocol/binary.js';
import { Raw, encodeClientInfo, publicationsRaw, stringify, toRawJson } from '../protocol/json.js';
import type { StreamPosition } from '../protocol/types.js';
import type { Switchboard } from '../node.js';
import { FileRefusal } from '../files/auth.js';
import { LOCK_HANDLERS } from './locks.js';
import { API_METHODS, type ApiMethod, type ParamsOf } from './schemas.js';
import { mapHandlers } from './map-handlers.js';
import { badParams, checkParams, normalizeParams, type ValidationIssue } from './validate.js';

export { API_METHODS, type ApiMethod } from './schemas.js';
export type ApiParams = Record<string, unknown>;
export type ApiReply = { result: unknown } | { error: ProtocolError };

const METHOD_SET: ReadonlySet<string> = new Set(API_METHODS);

export function isApiMethod(m: string): m is ApiMethod {
  return METHOD_SET.has(m);
}

const bad = (what: string): never => {
  throw new ReplyError({ code: Errors.badRequest.code, message: `bad request: ${what}` });
};

/**
 * Runs one server API command: params are checked against the method's
 * schema, protocol errors come back in `error`, never thrown.
 */
export async function execute(sb: Switchboard, method: string, params: unknown): Promise<ApiReply> {
  return measured(sb, method, () => {
    if (!isApiMethod(method)) throw new ReplyError(Errors.methodNotFound);
    return HANDLERS[method](sb, checkParams(method, normalizeParams(method, params)) as never);
  });
}

/**
 * `execute` for in-process callers (exported as `executeApiCommand`): the
 * result as plain JSON values, as an HTTP caller would parse it. `execute`
 * itself keeps stored JSON as `Raw` text for the HTTP encoder to splice in.
 */
export async function executeApiCommand(sb: Switchboard, method: string, params: unknown): Promise<ApiReply> {
  const r = await execute(sb, method, params);
  return 'error' in r ? r : { result: JSON.parse(stringify(r.result)) as unknown };
}

/**
 * Runs one command whose params a Fastify route already checked with the
 * same compiled schema (see validate.ts): `errors` is what that check found.
 */
export async function executeChecked(
  sb: Switchboard,
  method: ApiMethod,
  params: unknown,
  errors: readonly ValidationIssue[] | undefined,
): Promise<ApiReply> {
  return measured(sb, method, () => {
    if (errors) throw badParams(errors);
    return HANDLERS[method](sb, params as never);
  });
}

async function measured(sb: Switchboard, method: string, run: () => Promise<unknown>): Promise<ApiReply> {
  const started = performance.now();
  let result = 'ok';
  try {
    return { result: await run() };
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

/**
 * Base64 bytes → the value published: JSON text becomes its value, any other
 * bytes travel as a binary payload (protocol/binary.ts): Protobuf clients
 * receive the bytes, JSON clients a marked base64 string.
 */
function fromB64(field: string, b64: string): unknown {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length === 0) return bad(`${field} must be non-empty base64`);
  return bytesToValue(bytes);
}

/** A payload given as a JSON value or as base64 bytes (the `b64…` field); undefined when neither. */
function payloadOf(value: unknown, b64: string | undefined, b64Field: string): unknown {
  if (value !== undefined) return value;
  return b64 !== undefined ? fromB64(b64Field, b64) : undefined;
}

/** `data` or `b64data` → a JSON value to publish. */
function dataOf(p: { data?: unknown; b64data?: string }): unknown {
  const data = payloadOf(p.data, p.b64data, 'b64data');
  return data !== undefined ? data : bad('data required');
}

function position(p: { offset?: number; epoch?: string } | undefined): StreamPosition | undefined {
  return p ? { offset: p.offset ?? 0, epoch: p.epoch ?? '' } : undefined;
}

/** An empty client or session narrows nothing (as in Centrifugo). */
function target(p: { user?: string; client?: string; session?: string }) {
  return { user: p.user ?? '', client: p.client || undefined, session: p.session || undefined };
}

function publishOptions(p: {
  skip_history?: boolean;
  tags?: Record<string, string>;
  idempotency_key?: string;
  delta?: boolean;
  conflation_key?: string;
  fence?: { key: string; token: string };
}) {
  return {
    fence: p.fence,
    skipHistory: p.skip_history === true,
    tags: p.tags,
    idempotencyKey: p.idempotency_key || undefined,
    delta: p.delta === true ? true : undefined,
    conflationKey: p.conflation_key || undefined,
  };
}

const publishResult = (r: { offset: number; epoch: string }) => (r.offset > 0 ? { offset: r.offset, epoch: r.epoch } : {});

type Handlers = { [M in ApiMethod]: (sb: Switchboard, p: ParamsOf<M>) => Promise<unknown> };

/** One handler per method; params arrive checked and typed. */
const HANDLERS: Handlers = {
  ...LOCK_HANDLERS,
  async publish(sb, p) {
    return publishResult(await sb.publish(p.channel, dataOf(p), publishOptions(p)));
  },
  async broadcast(sb, p) {
    const rs = await sb.broadcast(p.channels, dataOf(p), publishOptions(p));
    return { responses: rs.map((r) => (r instanceof ReplyError ? { error: r.error } : { result: publishResult(r) })) };
  },
  async subscribe(sb, p) {
    const t = target(p);
    if (!t.user && !t.client) bad('user or client required');
    const since = position(p.recover_since);
    const info = payloadOf(p.info, p.b64info, 'b64info');
    const data = payloadOf(p.data, p.b64data, 'b64data');
    await sb.subscribe(t, p.channel, {
      info: info !== undefined ? toRawJson(info) : undefined,
      data: data !== undefined ? toRawJson(data) : undefined,
      recover: since !== undefined,
      since,
    });
    return {};
  },
  async unsubscribe(sb, p) {
    await sb.unsubscribe(target(p), p.channel);
    return {};
  },
  async disconnect(sb, p) {
    const code = p.disconnect?.code;
    await sb.disconnect(
      { ...target(p), whitelist: p.whitelist },
      code !== undefined ? { code, reason: p.disconnect?.reason || 'disconnect' } : undefined,
    );
    return {};
  },
  async refresh(sb, p) {
    await sb.refresh(target(p), { expired: p.expired === true, expireAt: p.expire_at, info: p.info });
    return {};
  },
  async presence(sb, p) {
    const presence: Record<string, Raw> = {};
    for (const [id, info] of await sb.presenceRaw(p.channel)) presence[id] = new Raw(encodeClientInfo(info));
    return { presence };
  },
  async presence_stats(sb, p) {
    const s = await sb.presenceStats(p.channel);
    return { num_clients: s.numClients, num_users: s.numUsers };
  },
  async history(sb, p) {
    const h = await sb.historyRaw(p.channel, {
      // Centrifugo v3+: no limit → only the stream position; -1 → everything kept.
      limit: p.limit === undefined ? 0 : p.limit < 0 ? undefined : p.limit,
      since: position(p.since),
      reverse: p.reverse === true,
    });
    return { publications: publicationsRaw(h.publications), offset: h.position.offset, epoch: h.position.epoch };
  },
  async history_remove(sb, p) {
    await sb.historyRemove(p.channel);
    return {};
  },
  async channels(sb, p) {
    const channels: Record<string, { num_clients: number }> = {};
    for (const [name, n] of await sb.channels(p.pattern || undefined)) channels[name] = { num_clients: n };
    return { channels };
  },
  async info(sb) {
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
  },
  async revoke_token(sb, p) {
    await sb.revoke({ jti: p.uid, expireAt: p.expire_at });
    return {};
  },
  async invalidate_user_tokens(sb, p) {
    // Channel-scoped invalidation (subscription tokens) is not implemented:
    // refuse it rather than invalidate all of the user's tokens.
    if (p.channel) throw new ReplyError(Errors.notAvailable);
    await sb.revoke({ user: p.user, issuedBefore: p.issued_before ?? Math.floor(Date.now() / 1000), expireAt: p.expire_at });
    return {};
  },
  async connections(sb, p) {
    const { connections: list, missing } = await sb.connections({ user: p.user, channel: p.channel, limit: p.limit });
    const connections: Record<string, unknown> = {};
    for (const c of list) {
      connections[c.client] = {
        user: c.user,
        transport: c.transport,
        protocol: c.protocol,
        app_name: c.app_name,
        app_version: c.app_version,
        connected_at_ms: c.connected_at,
        state: { channels: Object.fromEntries(c.channels.map((ch) => [ch, {}])) },
        conn_info: c.conn_info !== undefined ? new Raw(c.conn_info) : undefined,
        session: c.session,
        node: c.node,
        ip: c.ip,
      };
    }
    return missing.length > 0 ? { connections, missing_nodes: missing } : { connections };
  },
  async file_upload_token(sb, p) {
    if (!sb.files) throw new ReplyError(Errors.notAvailable);
    const r = await fileCall(() => sb.files!.uploadToken({ user: p.user, channel: p.channel, ttl: p.ttl, maxSize: p.max_size }));
    return { token: r.token, expire_at: r.expireAt };
  },
  async file_url(sb, p) {
    if (!sb.files) throw new ReplyError(Errors.notAvailable);
    return fileCall(async () => sb.files!.signedUrl(p.id, p.ttl));
  },
  ...mapHandlers({ dataOf, position }),
  async batch(sb, p) {
    const runOne = async (c: unknown): Promise<unknown> => {
      if (!c || typeof c !== 'object' || Array.isArray(c))
        return { error: { code: 107, message: 'bad request: command must be an object' } };
      const keys = Object.keys(c);
      if (keys.length !== 1 || keys[0] === 'batch') return { error: { code: 107, message: 'bad request: one method per command' } };
      const m = keys[0]!;
      const r = await execute(sb, m, (c as Record<string, unknown>)[m]);
      return 'error' in r ? { error: r.error } : { [m]: r.result };
    };
    const replies = p.parallel === true ? await Promise.all(p.commands.map(runOne)) : await sequential(p.commands, runOne);
    return { replies };
  },
};

/** A file service refusal (bad channel or id) is a bad request here. */
async function fileCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof FileRefusal) throw new ReplyError({ code: e.status === 404 ? 102 : 107, message: e.message });
    throw e;
  }
}

async function sequential<T, R>(xs: readonly T[], f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const x of xs) out.push(await f(x));
  return out;
}
