import type { ControlMessage } from '../engine/types.js';
import type { ClientTarget } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import { Disconnects, type Disconnect } from '../protocol/codes.js';
import type { RawJSON, StreamPosition } from '../protocol/types.js';
import { RevocationStore, type TokenClaims } from './revocations.js';

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

/**
 * Applies control messages (API actions that reach connections on every
 * node) to this node's connections: the target's connections for
 * disconnect/subscribe/unsubscribe/refresh, every connection for a
 * revocation (which the store also records for later connects).
 */
export class ControlApplier {
  constructor(
    private readonly deps: {
      /** This node's connections a target names. */
      readonly find: (target: ClientTarget) => Iterable<ControlledConnection>;
      /** Every connection of this node (revocations check each one's token). */
      readonly all: () => Iterable<ControlledConnection>;
      readonly revocations: RevocationStore;
      readonly log: Logger;
    },
  ) {}

  apply(msg: ControlMessage): void {
    if (msg.type === 'revoke') {
      this.deps.revocations.record(msg);
      for (const c of this.deps.all()) {
        const claims: TokenClaims = { user: c.user, ...c.tokenIdentity() };
        if (RevocationStore.hits(msg, claims)) c.disconnect(Disconnects.invalidToken);
      }
      return;
    }
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
