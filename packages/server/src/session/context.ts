import type { FifoDeadlines } from './deadlines.js';
import type { JWTPayload } from 'jose';
import type { ResolvedChannel } from '../auth/channels.js';
import type { Config, NamespaceConfig } from '../config/load.js';
import type { Broker, HistoryStore, PresenceManager } from '../engine/types.js';
import type { MapPresence } from '../maps/presence.js';
import type { MapService } from '../maps/service.js';
import type { HubClient, Subscriber } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { Heartbeat } from '../transport/heartbeat.js';
import type { BuiltinRpc } from '../locks/rpc.js';
import type { ParamsOf } from '../protocol/params.js';
import type { Hooks } from './hooks.js';
import type { LogOnce } from './ratelimit.js';

/*
 * What a session needs of its node, each as a narrow interface: sessions
 * never import the node, and the node decides how each is done. Built in one
 * place (the `Switchboard` constructor).
 */

/** The `client` section of the config (limits, tokens, expiry, recovery). */
export type ClientOptions = Config['client'];

/** The node's identity as a connect reply reports it. */
export interface NodeIdentity {
  readonly id: string;
  readonly version: string;
}

/** A connected session as the node's index (the hub) and heartbeats hold it. */
export interface IndexedSession extends HubClient, Heartbeat {
  readonly ip: string;
}

/** The node's live connections: counts for limits, and the index a session enters once connected. */
export interface ConnectionIndex {
  /** Connections on this node. */
  readonly count: number;
  /** Connections of a user on this node. */
  ofUser(user: string): number;
  /** A session completed connect: it is found by user and client, and gets heartbeats. */
  add(s: IndexedSession): void;
  remove(s: IndexedSession): void;
  /** Called once when a session has closed, whatever state it reached. */
  closed(s: IndexedSession): void;
  /** A connected session ran a client command (user status activity). */
  active?(s: IndexedSession): void;
}

/** Channel subscriptions as the node counts them (hub entry plus the engine's delivery of the channel). */
export interface SubscriberRegistry {
  /** Resolves once the engine delivers the channel to this node. */
  add(sub: Subscriber): Promise<void>;
  remove(sub: Subscriber): void;
  /** The node's count of publication encodings by codec slot (a recovery merge may encode). */
  readonly encodes: number[];
}

/** What sessions ask of the engine's roles: publish (with join and leave), history reads, presence. */
export interface SessionEngine {
  readonly broker: Pick<Broker, 'publish' | 'publishJoin' | 'publishLeave'>;
  readonly history: Pick<HistoryStore, 'read'>;
  readonly presence: PresenceManager;
}

export interface TokenCheck {
  verify(token: string): Promise<JWTPayload>;
}

export interface Credentials {
  /** Connection tokens. */
  readonly tokens: TokenCheck;
  /** Subscription tokens (the connection verifier unless configured apart). */
  readonly subTokens: TokenCheck;
  /**
   * Revoked by jti, or issued before the user's invalidation time. A token
   * without `iat` cannot show it was issued after that time, so it counts as older.
   */
  isRevoked(claims: { readonly user: string; readonly jti?: string; readonly iat?: number }): Promise<boolean>;
}

export interface ChannelDirectory {
  /** Namespace and access rules of a channel; throws 102 for an unknown namespace or invalid name. */
  resolve(channel: string): ResolvedChannel;
  personalChannel(user: string, personal: ClientOptions['subscribe_to_user_personal_channel']): string | undefined;
}

/** Node-wide limits (per user across nodes, per namespace) and the once-per-interval logger. */
export interface SessionLimits {
  readonly logOnce: LogOnce;
  userPublication(user: string, now: number): Promise<boolean>;
  namespacePublication(ns: NamespaceConfig, now: number): boolean;
}

export interface PayloadChecks {
  checkPublication(ns: NamespaceConfig, data: unknown): void;
  checkRpc(method: string, data: unknown): void;
}

export interface SessionContext {
  readonly options: ClientOptions;
  readonly node: NodeIdentity;
  readonly connections: ConnectionIndex;
  readonly subscribers: SubscriberRegistry;
  readonly engine: SessionEngine;
  readonly credentials: Credentials;
  readonly channels: ChannelDirectory;
  readonly hooks: Hooks;
  readonly limits: SessionLimits;
  readonly payloads: PayloadChecks;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Connections that have not sent connect yet, closed with 3502 (stale) after client.stale_close_delay; absent when it is 0. */
  readonly stale?: FifoDeadlines<{ staleDue(): void }>;
  /** Set when client commands are traced (opentelemetry.enabled and .client); absent, commands run untraced. */
  readonly tracing?: Tracing;
  /** RPC methods the server answers itself (locks, user status: docs/LOCKS.md), before the onRpc hook. */
  readonly builtinRpc?: BuiltinRpc;
  /** Checks the fencing token a client publication carries (`$fence`; required in a `fenced` namespace). */
  readonly fence?: (channel: string, ns: NamespaceConfig, data: unknown) => Promise<void>;
  /** Map channels (mutations with the namespace's rules, and map presence); absent: none configured. */
  readonly maps?: { readonly service: MapService; readonly presence: MapPresence };
  /** Shared poll subscriptions (sharedpoll/): subscribe type 4, track and untrack. */
  readonly sharedPoll?: SharedPollCommands;
}

/** What the shared poll commands use of a connection. */
export interface PollingSession extends HubClient {
  readonly ctx: SessionContext;
  readonly ip: string;
  /** Still connected (the socket may close while a handler awaits). */
  readonly live: boolean;
  readonly subs: { has(channel: string): boolean; readonly size: number };
}

/** Shared poll subscriptions as the command handlers call them (sharedpoll/service.ts). */
export interface SharedPollCommands {
  has(client: HubClient, channel: string): boolean;
  subscribe(s: PollingSession, p: ParamsOf<'subscribe'>): Promise<{ readonly result: unknown; readonly after?: () => void }>;
  subRefresh(s: PollingSession, p: ParamsOf<'sub_refresh'>): Promise<{ readonly result: unknown; readonly after?: () => void }>;
  /** True when it was a shared poll subscription (then it is gone). */
  unsubscribe(client: HubClient, channel: string): boolean;
  closed(client: HubClient): void;
}
