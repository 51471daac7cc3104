import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/load.js';
import {
  HISTORY,
  NODES,
  NODE_REMOVE,
  PRESENCE_ADD,
  PRESENCE_GET,
  PRESENCE_REMOVE,
  PUBLISH,
  PUBLISH_HELD,
  REVOKE,
  TAKE_TOKEN,
} from './scripts.js';

type RedisConfig = Config['engine']['redis'];
export type Client = Redis | Cluster;

/** The engine's Lua scripts as commands (EVALSHA, falling back to EVAL once per connection). */
export interface Scripted {
  sbPublish(...args: string[]): Promise<[string, number]>;
  sbPublishHeld(...args: string[]): Promise<number>;
  sbHistory(...args: string[]): Promise<[string, string, Array<[string, string[]]>]>;
  sbPresenceAdd(...args: string[]): Promise<number>;
  sbPresenceRemove(...args: string[]): Promise<number>;
  sbPresenceGet(...args: string[]): Promise<string[]>;
  sbNodes(...args: string[]): Promise<string[]>;
  sbNodeRemove(...args: string[]): Promise<number>;
  sbTakeToken(...args: string[]): Promise<number>;
  sbRevoke(...args: string[]): Promise<number>;
}

const SCRIPTS: Array<[keyof Scripted, number, string]> = [
  ['sbPublish', 3, PUBLISH],
  ['sbPublishHeld', 2, PUBLISH_HELD],
  ['sbHistory', 2, HISTORY],
  ['sbPresenceAdd', 2, PRESENCE_ADD],
  ['sbPresenceRemove', 2, PRESENCE_REMOVE],
  ['sbPresenceGet', 2, PRESENCE_GET],
  ['sbNodes', 2, NODES],
  ['sbNodeRemove', 2, NODE_REMOVE],
  ['sbTakeToken', 1, TAKE_TOKEN],
  ['sbRevoke', 1, REVOKE],
];

function hostPort(addr: string): { host: string; port: number } {
  const u = new URL(addr.includes('://') ? addr : `redis://${addr}`);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

/**
 * Options shared by every connection. Commands never wait for a
 * connection: without the offline queue they fail at once while Redis is
 * away, and a command in flight fails after io_timeout. Reconnects back
 * off up to the breaker cooldown, so a dead Redis is probed, not hammered.
 */
function baseOptions(c: RedisConfig, role: 'cmd' | 'sub'): RedisOptions {
  return {
    password: c.password || undefined,
    db: c.db,
    tls: c.tls ? {} : undefined,
    connectTimeout: Math.max(1, c.connect_timeout),
    commandTimeout: c.io_timeout > 0 ? c.io_timeout : undefined,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    enableAutoPipelining: role === 'cmd',
    lazyConnect: true,
    connectionName: `switchboard-${role}-${process.pid}`,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), Math.max(100, c.circuit_breaker_cooldown)),
  };
}

/**
 * One connection to one Redis shard (a single server, a Sentinel-managed
 * master, or a Cluster), with the engine's scripts defined on it.
 */
export function createClient(c: RedisConfig, address: string, role: 'cmd' | 'sub'): Client {
  const opts = baseOptions(c, role);
  let client: Client;
  if (c.cluster_addresses.length > 0 && role === 'sub') {
    client = clusterSubscriber(c, opts);
  } else if (c.cluster_addresses.length > 0) {
    client = new Cluster(c.cluster_addresses.map(hostPort), {
      redisOptions: opts,
      enableOfflineQueue: false,
      enableAutoPipelining: role === 'cmd',
      lazyConnect: true,
      clusterRetryStrategy: opts.retryStrategy,
    });
  } else if (c.sentinel_addresses.length > 0) {
    client = new Redis({ ...opts, sentinels: c.sentinel_addresses.map(hostPort), name: c.sentinel_master_name || 'mymaster' });
  } else {
    const u = new URL(address.includes('://') ? address : `redis://${address}`);
    client = new Redis({
      ...opts,
      host: u.hostname,
      port: Number(u.port || 6379),
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: opts.password ?? (u.password ? decodeURIComponent(u.password) : undefined),
      db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : opts.db,
      tls: u.protocol === 'rediss:' ? {} : opts.tls,
    });
  }
  if (role === 'cmd') for (const [name, numberOfKeys, lua] of SCRIPTS) client.defineCommand(name, { numberOfKeys, lua });
  return client;
}

/**
 * PUB/SUB on a Cluster: one plain connection to any of its nodes (classic
 * PUBLISH reaches every node), moving to the next seed address on each
 * reconnect. Not ioredis's Cluster subscriber: that one moves to another
 * node by itself and resubscribes silently, so the publications sent in the
 * gap would be lost without anybody told; here every reconnect is a 'ready'
 * that resubscribes and resyncs the subscribers (RedisBroker.watch).
 */
function clusterSubscriber(c: RedisConfig, opts: RedisOptions): Redis {
  const seeds = c.cluster_addresses.map(hostPort);
  let next = 0;
  const retry = opts.retryStrategy!;
  const client: Redis = new Redis({
    ...opts,
    ...seeds[0],
    retryStrategy: (times: number) => {
      next = (next + 1) % seeds.length;
      Object.assign(client.options, seeds[next]);
      return retry(times);
    },
  });
  return client;
}

export function scripted(c: Client): Scripted {
  return c as unknown as Scripted;
}

/** The servers to ask for server-local facts (PUBSUB CHANNELS): every master of a Cluster, or the one server. */
export function servers(c: Client): Redis[] {
  return c instanceof Cluster ? c.nodes('master') : [c];
}

/**
 * WAIT on the connection that wrote `key`: on a Cluster the master serving
 * the key's slot (WAIT has no key of its own to be routed by), else the
 * one server. Resolves with the number of replicas that have every write
 * made on that connection so far.
 */
export async function waitReplicas(c: Client, key: string, replicas: number, timeoutMs: number): Promise<number> {
  let server: Redis | undefined;
  if (c instanceof Cluster) {
    const owner = c.slots[calculateSlot(key)]?.[0];
    server = c.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!server) throw new Error(`no master known for the slot of ${key}`);
  } else {
    server = c;
  }
  return (await server.wait(replicas, timeoutMs)) as number;
}
