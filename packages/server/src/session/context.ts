import type { ChannelRules } from '../auth/channels.js';
import type { PayloadValidators } from '../auth/schemas.js';
import type { TokenVerifier } from '../auth/jwt.js';
import type { Config } from '../config/load.js';
import type { Engine, TokenIdentity } from '../engine/types.js';
import type { Hub, Subscriber } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { HeartbeatWheel } from '../transport/heartbeat.js';
import type { Hooks } from './hooks.js';
import type { NodeLimits } from './ratelimit.js';

/** What a session needs of its node: handed in, so sessions never import the node. */
export interface SessionContext {
  readonly config: Config;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly tokens: TokenVerifier;
  readonly subTokens: TokenVerifier;
  readonly channels: ChannelRules;
  readonly hooks: Hooks;
  readonly heartbeats: HeartbeatWheel;
  readonly limits: NodeLimits;
  readonly validators: PayloadValidators;
  readonly nodeId: string;
  readonly version: string;
  /** True when the token was revoked (by id, or its user's tokens of its age); shared by every node. */
  tokenRevoked(token: TokenIdentity): Promise<boolean>;
  /** Adds a subscriber to the hub; resolves once the engine delivers the channel to this node. */
  addSubscriber(sub: Subscriber): Promise<void>;
  removeSubscriber(sub: Subscriber): void;
  /** Called once when a session has closed. */
  sessionClosed(s: { readonly ip: string }): void;
}
