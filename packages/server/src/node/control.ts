import type { ControlMessage } from '../engine/types.js';
import type { ClientTarget } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { Disconnects, type Disconnect } from '../protocol/codes.js';
import type { RawJSON, StreamPosition } from '../protocol/types.js';

/** What a control message may do to one connection (a session, seen narrowly). */
export interface ControlledConnection {
  readonly id: string;
  readonly user: string;
  disconnect(d: Disconnect): void;
  serverSubscribe(channel: string, req: { chanInfo?: RawJSON; data?: RawJSON; recover?: boolean; since?: StreamPosition }): Promise<void>;
  serverUnsubscribe(channel: string): void;
  serverRefresh(expired: boolean, expireAt: number | undefined, info: RawJSON | undefined): void;
  /** The token the connection stands on now. */
  tokenIdentity(): { jti?: string; iat?: number };
}

type Revoke = Extract<ControlMessage, { type: 'revoke' }>;

/**
 * Whether a revocation hits a live connection standing on this token
 * (user, jti, iat in unix seconds). A token without `iat` cannot show it was
 * issued after the invalidation time, so it counts as older.
 */
export function revocationHits(msg: Revoke, token: { user: string; jti?: string; iat?: number }): boolean {
  if (msg.jti && token.jti === msg.jti) return true;
  return !!(msg.user && token.user === msg.user && msg.issuedBefore && (token.iat ?? 0) * 1000 < msg.issuedBefore);
}

/**
 * Applies control messages (API actions that reach connections on every
 * node) to this node's connections: the target's connections for
 * disconnect/subscribe/unsubscribe/refresh, every connection for a
 * revocation (the engine's revocation store keeps it for later connects).
 */
export class ControlApplier {
  constructor(
    private readonly deps: {
      /** This node's connections a target names. */
      readonly find: (target: ClientTarget) => Iterable<ControlledConnection>;
      /** Every connection of this node (revocations check each one's token). */
      readonly all: () => Iterable<ControlledConnection>;
      readonly log: Logger;
    },
  ) {}

  /** The connections API's messages are not actions on connections: node.ts hands them to the ConnectionsGatherer. */
  apply(msg: Exclude<ControlMessage, { type: 'connections_request' | 'connections_reply' }>): void {
    if (msg.type === 'revoke') {
      for (const c of this.deps.all()) {
        if (revocationHits(msg, { user: c.user, ...c.tokenIdentity() })) c.disconnect(Disconnects.invalidToken);
      }
      return;
    }
    // emulation requests are the HTTP endpoint's (node.ts routes them there)
    if (msg.type === 'emulation' || msg.type === 'emulation_ack' || msg.type === 'history_removed') return;
    for (const c of this.deps.find(msg)) {
      switch (msg.type) {
        case 'disconnect':
          if (msg.whitelist?.includes(c.id)) continue;
          c.disconnect({ code: msg.code, reason: msg.reason });
          break;
        case 'unsubscribe':
          c.serverUnsubscribe(msg.channel);
          break;
        case 'subscribe':
          c.serverSubscribe(msg.channel, {
            chanInfo: msg.options?.info,
            data: msg.options?.data,
            recover: msg.options?.recover,
            since: msg.options?.since,
          }).catch((e: unknown) => this.deps.log.warn({ client: c.id, channel: msg.channel, err: String(e) }, 'server subscribe failed'));
          break;
        case 'refresh':
          c.serverRefresh(!!msg.expired, msg.expireAt, msg.info);
          break;
      }
    }
  }
}
