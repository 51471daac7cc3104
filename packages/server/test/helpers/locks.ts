/**
 * Nodes for the lock and user status tests: one in-process node on the
 * memory engine, or two on Redis (the machine's, a unique prefix per run)
 * sharing nothing but Redis; and the SDK's RPC error as a value.
 */
import type { Centrifuge } from 'centrifuge';
import { deepMerge, loadConfig } from '../../src/config/load.js';
import { RedisEngine } from '../../src/engine/redis/engine.js';
import type { HolderValue } from '../../src/locks/index.js';
import type { Switchboard } from '../../src/node.js';
import { SECRET, embedded, type EmbeddedNode } from './embedded.js';
import { SHARED_REDIS, uniquePrefix } from './redis.js';
import type { TestContextLike } from './scope.js';

export type EngineKind = 'memory' | 'redis';

export interface LockNode extends EmbeddedNode {
  readonly secret: string;
}

/** Config of the lock tests: locks and user status on, `quote` fenced, lock leases from 50 ms. */
export const LOCKS_CONFIG = {
  locks: { enabled: true, min_ttl_ms: 50, sweep_interval_ms: 20 },
  user_status: { enabled: true },
  channel: {
    namespaces: [
      { name: 'quote', allow_subscribe_for_client: true, allow_publish_for_subscriber: true, fenced: true },
      { name: 'notes', allow_subscribe_for_client: true, allow_publish_for_subscriber: true },
      { name: 'locks', allow_subscribe_for_client: true },
    ],
  },
};

/** The holders namespace as a map namespace (server-written, clients read): add it to LOCKS_CONFIG's namespaces. */
export const HOLDERS_NAMESPACE = {
  name: 'locks',
  subscription_type: 'map',
  allow_subscribe_for_client: true,
  map: { mode: 'ephemeral', key_ttl: '70s' },
};

/** True when the Redis engine has a map role on this branch (the map-redis work may not be merged yet). */
export function redisHasMaps(): boolean {
  const e = new RedisEngine(loadConfig({ object: { engine: { type: 'redis', redis: { address: SHARED_REDIS } } } }).config);
  return (e as { maps?: unknown }).maps !== undefined;
}

/** `count` nodes on `kind` (memory: every node has its own engine, so use one). */
export async function lockNodes(
  t: TestContextLike,
  kind: EngineKind,
  count: number,
  extra: Record<string, unknown> = {},
  /** engine.redis overrides (e.g. cluster_addresses). */
  redis: Record<string, unknown> = {},
): Promise<LockNode[]> {
  const config = deepMerge(LOCKS_CONFIG, extra);
  const prefix = uniquePrefix('locks');
  const out: LockNode[] = [];
  for (let i = 0; i < count; i++) {
    const engine =
      kind === 'redis'
        ? new RedisEngine(
            loadConfig({
              object: deepMerge(config, {
                engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix, presence_ttl: '5s', ...redis } },
              }),
            }).config,
          )
        : undefined;
    const n = await embedded(t, config, engine ? { engine } : {});
    out.push({ ...n, secret: SECRET });
  }
  return out;
}

/** The `{code, message}` a call was refused with (fails when it was not). */
export async function refusal(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a refusal, the call succeeded');
}

/** The result data of a client RPC. */
export async function rpc<T = any>(c: Centrifuge, method: string, data: unknown): Promise<T> {
  return (await c.rpc(method, data)).data as T;
}

/** Every holder change of the nodes, in the order each node told it. */
export function recordHolders(
  nodes: readonly { readonly sb: Switchboard }[],
): Array<
  | { node: number; op: 'set'; channel: string; field: string; value: HolderValue }
  | { node: number; op: 'remove'; channel: string; field: string; token: string; endedAt: number }
> {
  const events: ReturnType<typeof recordHolders> = [];
  nodes.forEach((n, node) =>
    n.sb.locks.observe({
      set: (channel, field, value) => events.push({ node, op: 'set', channel, field, value }),
      remove: (channel, field, e) => events.push({ node, op: 'remove', channel, field, token: e.token, endedAt: e.endedAt }),
    }),
  );
  return events;
}
