import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Errors, ReplyError } from './codes.js';
import type { Method, Params } from './commands.js';
import { toRawJson } from './json.js';
import type { StreamPosition } from './types.js';

/*
 * The params of every client command as TypeBox schemas, compiled once at
 * load: a check is a few typeof tests per command. A command whose params do
 * not match is answered with 107 (bad request), that command only; the
 * connection stays (what the `centrifuge` client expects).
 *
 * The protocol's JSON form lets a client send `null` for any absent field,
 * so optional fields accept null and handlers read them with `?? default`.
 */

const nullable = <T extends TSchema>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const optString = nullable(Type.String());
const optBool = nullable(Type.Boolean());
/** Offsets are unsigned 64-bit on the wire; we take what a JS number holds exactly. */
const optOffset = nullable(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }));
/** Required and non-empty. */
const name = Type.String({ minLength: 1 });
const anyValue = Type.Optional(Type.Unknown());

/** `{offset, epoch}`: read only where the command asks for recovery (a subscribe with `recover`). */
const Position = Type.Object({ offset: optOffset, epoch: optString });

const Connect = Type.Object({
  token: optString,
  data: anyValue,
  name: optString,
  version: optString,
  /**
   * Per-channel recovery state of server-side subscriptions; each entry is read as a Position when it
   * recovers. Any object: channel names are not patterns a Record key schema could hold.
   */
  subs: nullable(Type.Unsafe<Record<string, unknown>>(Type.Object({}))),
});

const Subscribe = Type.Object({
  channel: name,
  token: optString,
  data: anyValue,
  recover: optBool,
  recoverable: optBool,
  positioned: optBool,
  join_leave: optBool,
  /** Delta compression the client asks for ('fossil'). */
  delta: optString,
  /** Tags filter tree: checked by compileTagsFilter (a clear 107 when bad). */
  tf: anyValue,
  /** Subscription flags bitmask (1 = channel compaction). */
  flag: nullable(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  /** Map subscriptions: 1 map, 2 map_clients, 3 map_users (0 / absent: a stream). */
  type: nullable(Type.Integer({ minimum: 0, maximum: 3 })),
  /** Map subscriptions: 2 state page, 1 stream catch-up (0 / absent: live). */
  phase: nullable(Type.Integer({ minimum: 0, maximum: 2 })),
  /** Map state page cursor from the page before. */
  cursor: optString,
  /** Position to recover from (with `recover`), or of a map subscribe's flow. */
  offset: optOffset,
  epoch: optString,
  /** Map page size (0 = the namespace default). */
  limit: nullable(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
});

const Channel = Type.Object({ channel: name });

/** A stream publish needs data (checked by the handler); a map publish (type 1) names a key, a map remove sets `removed`. */
const Publish = Type.Object({
  channel: name,
  data: anyValue,
  type: nullable(Type.Integer({ minimum: 0, maximum: 1 })),
  key: optString,
  removed: optBool,
});

const History = Type.Object({
  channel: name,
  /** -1 (and anything above the configured maximum) means "as many as allowed". */
  limit: nullable(Type.Integer({ minimum: -1, maximum: Number.MAX_SAFE_INTEGER })),
  since: nullable(Position),
  reverse: optBool,
});

const Rpc = Type.Object({ method: optString, data: anyValue });

const Send = Type.Object({ data: anyValue });

const Refresh = Type.Object({ token: name });

const SubRefresh = Type.Object({ channel: name, token: name });

export const ParamSchemas = {
  connect: Connect,
  subscribe: Subscribe,
  unsubscribe: Channel,
  publish: Publish,
  presence: Channel,
  presence_stats: Channel,
  history: History,
  rpc: Rpc,
  send: Send,
  refresh: Refresh,
  sub_refresh: SubRefresh,
} as const satisfies Record<Method, TSchema>;

export type ParamsOf<M extends Method> = Static<(typeof ParamSchemas)[M]>;

const checks = Object.fromEntries(Object.entries(ParamSchemas).map(([m, s]) => [m, TypeCompiler.Compile(s)])) as {
  [M in Method]: TypeCheck<(typeof ParamSchemas)[M]>;
};
const positionCheck = TypeCompiler.Compile(Position);

/** The command's params, typed; 107 when they do not match the method's schema. */
export function parseParams<M extends Method>(method: M, p: Params): ParamsOf<M> {
  const check = checks[method] as TypeCheck<TSchema>;
  if (!check.Check(p)) throw new ReplyError(Errors.badRequest);
  return p as ParamsOf<M>;
}

/** A stream position a client sent (`{offset, epoch}` fields of `p`); 107 when they have the wrong type. */
export function parsePosition(p: unknown): StreamPosition {
  if (!positionCheck.Check(p)) throw new ReplyError(Errors.badRequest);
  return { offset: p.offset ?? 0, epoch: p.epoch ?? '' };
}

/** Raw JSON text of a client's `data` value (the JSON protocol embeds it as a value). */
export function rawData(v: unknown): string | undefined {
  return v === undefined ? undefined : toRawJson(v);
}
