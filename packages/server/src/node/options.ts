import type { Config } from '../config/load.js';
import type { Engine } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { ClientInfo, StreamPosition } from '../protocol/types.js';
import type { Hooks } from '../session/hooks.js';

// The option types of the in-process API (re-exported by node.ts).

export interface SwitchboardOptions {
  /** Config as an object (Centrifugo v6 key names), merged over defaults. Ignored when `resolvedConfig` is given. */
  config?: Record<string, unknown>;
  resolvedConfig?: Config;
  hooks?: Hooks;
  logger?: Logger;
  /** Use this engine instead of the one the config names. */
  engine?: Engine;
}

export interface ApiPublishOptions {
  readonly skipHistory?: boolean;
  readonly tags?: Readonly<Record<string, string>>;
  readonly idempotencyKey?: string;
  readonly info?: ClientInfo;
  /** Allow sending this publication as a fossil delta (default: the namespace's `delta_publish`). */
  readonly delta?: boolean;
  /** A slow subscriber's queue keeps only the newest publication per channel and key (overrides the namespace's `conflation_key`). */
  readonly conflationKey?: string;
  /** Refused (151 stale, 152 never issued) unless `token` is the lock key's current fencing token (docs/LOCKS.md). */
  readonly fence?: { readonly key: string; readonly token: string };
}

export interface HistoryOptions {
  /** A count; 0 = the stream position only; -1 or none = everything kept. */
  readonly limit?: number;
  readonly since?: StreamPosition;
  readonly reverse?: boolean;
}

export interface ApiTarget {
  readonly user: string;
  readonly client?: string;
  readonly session?: string;
}
