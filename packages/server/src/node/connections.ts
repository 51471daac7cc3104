import { randomUUID } from 'node:crypto';
import type { Broker, ConnectionDescription, ControlMessage, NodeRegistry } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { ClientInfo } from '../protocol/types.js';

/** What the connections API reads of one connection (a session, seen narrowly). */
export interface DescribedConnection {
  readonly id: string;
  readonly session: string;
  readonly user: string;
  readonly ip: string;
  readonly transport: string;
  readonly codec: { readonly slot: number };
  readonly live: boolean;
  readonly connectedAt: number;
  readonly app: { readonly name?: string; readonly version?: string };
  readonly info: ClientInfo;
  channels(): string[];
}

/** Which connections a request asks for: a user's, a channel's subscribers, or (neither) every one, up to `limit` per node. */
export interface ConnectionsQuery {
  readonly user?: string;
  readonly channel?: string;
  readonly limit: number;
}

type Request = Extract<ControlMessage, { type: 'connections_request' }>;
type Reply = Extract<ControlMessage, { type: 'connections_reply' }>;

/** How long a node waits for the other nodes' answers before it answers with what it has. */
export const CONNECTIONS_TIMEOUT_MS = 3000;

/**
 * The connections API across nodes: the asking node sends a request on the
 * engine's control channel, every other node answers with its matching
 * connections, and the asking node gathers the answers of the nodes the
 * registry lists (or stops waiting after a timeout and says which nodes did
 * not answer). An admin path, never the hot path: it walks connections.
 */
export class ConnectionsGatherer {
  private readonly pending = new Map<string, { got: Map<string, ConnectionDescription[]>; wanted: Set<string>; done: () => void }>();

  constructor(
    private readonly deps: {
      readonly nodeId: string;
      readonly broker: Broker;
      readonly nodes?: NodeRegistry;
      /** This node's connections: all, a user's, or a channel's subscribers. */
      readonly local: (q: ConnectionsQuery) => Iterable<DescribedConnection>;
      readonly log: Logger;
      readonly timeoutMs?: number;
    },
  ) {}

  /** Matching connections on every node; `missing` names the nodes that did not answer in time. */
  async gather(q: ConnectionsQuery): Promise<{ connections: ConnectionDescription[]; missing: string[] }> {
    const mine = this.describeLocal(q);
    const registry = this.deps.nodes;
    if (!registry) return { connections: mine, missing: [] };
    const others = (await registry.list()).map((n) => n.uid).filter((uid) => uid !== this.deps.nodeId);
    if (others.length === 0) return { connections: mine, missing: [] };
    const id = randomUUID();
    const got = new Map<string, ConnectionDescription[]>();
    const wanted = new Set(others);
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<void>((resolve) => {
      this.pending.set(id, { got, wanted, done: resolve });
      timer = setTimeout(resolve, this.deps.timeoutMs ?? CONNECTIONS_TIMEOUT_MS);
    });
    try {
      await this.deps.broker.publishControl({ type: 'connections_request', id, from: this.deps.nodeId, ...q });
      await finished;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
    const connections = [...mine];
    for (const list of got.values()) connections.push(...list);
    return { connections, missing: others.filter((uid) => !got.has(uid)) };
  }

  /** A control message of the connections API (a request from another node, or an answer to ours). */
  handle(msg: Request | Reply): void {
    if (msg.type === 'connections_request') {
      if (msg.from === this.deps.nodeId) return;
      const limit = Math.max(0, Math.min(msg.limit, MAX_LIMIT));
      const connections = this.describeLocal({ user: msg.user, channel: msg.channel, limit });
      this.deps.broker
        .publishControl({ type: 'connections_reply', id: msg.id, from: this.deps.nodeId, to: msg.from, connections })
        .catch((e: unknown) => this.deps.log.warn({ err: String(e) }, 'connections reply failed'));
      return;
    }
    if (msg.to !== this.deps.nodeId) return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    p.got.set(msg.from, msg.connections);
    // A node that joined after we listed the registry is taken as well, but never waited for.
    p.wanted.delete(msg.from);
    if (p.wanted.size === 0) p.done();
  }

  private describeLocal(q: ConnectionsQuery): ConnectionDescription[] {
    const out: ConnectionDescription[] = [];
    for (const c of this.deps.local(q)) {
      if (out.length >= q.limit) break;
      if (!c.live) continue;
      out.push({
        client: c.id,
        user: c.user,
        session: c.session,
        node: this.deps.nodeId,
        transport: c.transport,
        protocol: c.codec.slot === 1 ? 'protobuf' : 'json',
        app_name: c.app.name,
        app_version: c.app.version,
        connected_at: c.connectedAt,
        ip: c.ip,
        conn_info: c.info.connInfo,
        channels: c.channels(),
      });
    }
    return out;
  }
}

/** The most connections one node describes in one answer. */
export const MAX_LIMIT = 10_000;
