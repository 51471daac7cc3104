import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** JSON-compatible value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface ConnectingContext {
  readonly client: string;
  /** The connection's session id: the server API's `session` target names this one connection. */
  readonly session: string;
  readonly request: IncomingMessage;
  /** The token the client sent, if any (already rejected or not verified yet). */
  readonly token?: string;
  readonly data?: Json;
  readonly name?: string;
  readonly version?: string;
}

export interface ConnectingResult {
  /** The user ID ("" = anonymous). */
  readonly user: string;
  readonly info?: Json;
  /** Returned to the client in the connect reply. */
  readonly data?: Json;
  /** Server-side subscriptions. */
  readonly channels?: readonly string[];
  /** Unix seconds at which the connection expires (0 = never). */
  readonly expireAt?: number;
}

export interface ClientContext {
  readonly client: string;
  /** The connection's session id: the server API's `session` target names this one connection. */
  readonly session: string;
  readonly user: string;
  readonly info?: Json;
  /** Headers of the connection's HTTP upgrade request (cookies, auth). */
  readonly headers?: IncomingHttpHeaders;
}

export interface RefreshResult {
  /** True: the connection (or subscription) ends now. */
  readonly expired?: boolean;
  /** New expiry, unix seconds. */
  readonly expireAt?: number;
  readonly info?: Json;
}

export interface SubscribeContext extends ClientContext {
  readonly channel: string;
  readonly data?: Json;
}

export interface SubscribeResult {
  /** Channel-specific info attached to presence and join/leave. */
  readonly info?: Json;
  /** Returned to the client in the subscribe reply. */
  readonly data?: Json;
  readonly expireAt?: number;
}

export interface PublishContext extends ClientContext {
  readonly channel: string;
  readonly data: Json;
}

export interface PublishResult {
  /** Replaces the published data. */
  readonly data?: Json;
  readonly skipHistory?: boolean;
}

export interface RpcContext extends ClientContext {
  readonly method: string;
  readonly data?: Json;
}

export interface MessageContext extends ClientContext {
  readonly data?: Json;
}

export interface DisconnectContext extends ClientContext {
  readonly code: number;
  readonly reason: string;
}

/**
 * In-process hooks. Each may throw a `SwitchboardError` (protocol error
 * code) to refuse; returning undefined from onConnecting / onSubscribe
 * falls back to the configured rules (JWT, namespace permissions).
 */
export interface Hooks {
  onConnecting?(ctx: ConnectingContext): Promise<ConnectingResult | undefined> | ConnectingResult | undefined;
  onSubscribe?(ctx: SubscribeContext): Promise<SubscribeResult | undefined> | SubscribeResult | undefined;
  onPublish?(ctx: PublishContext): Promise<PublishResult | undefined | void> | PublishResult | undefined | void;
  /** Called when a connection's credentials expire, instead of waiting for the client to refresh. */
  onRefresh?(ctx: ClientContext): Promise<RefreshResult | undefined> | RefreshResult | undefined;
  /** Called when a subscription expires, instead of waiting for the client's sub_refresh. */
  onSubRefresh?(ctx: SubscribeContext): Promise<RefreshResult | undefined> | RefreshResult | undefined;
  onRpc?(ctx: RpcContext): Promise<Json | undefined> | Json | undefined;
  onMessage?(ctx: MessageContext): Promise<void> | void;
  onDisconnect?(ctx: DisconnectContext): void;
}
