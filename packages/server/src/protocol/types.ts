/**
 * Wire-level value types of the client protocol. JSON payloads (`data`,
 * `info`) travel as raw JSON text: they are validated once when they enter
 * the server and then spliced into frames verbatim, never re-parsed.
 */

/** Raw JSON text, already validated. */
export type RawJSON = string;

export interface ClientInfo {
  readonly user: string;
  readonly client: string;
  readonly connInfo?: RawJSON;
  readonly chanInfo?: RawJSON;
}

export interface Publication {
  readonly offset: number;
  readonly data: RawJSON;
  readonly info?: ClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  /** The publisher allows sending it as a fossil delta to delta subscriptions (API `delta`, namespace `delta_publish`). */
  readonly delta?: boolean;
  /** Milliseconds since epoch when the publication was accepted. */
  readonly time?: number;
  /** Switchboard: a slow connection's queue keeps only the newest publication per channel and key (never sent to clients). */
  readonly conflationKey?: string;
  /** Map channels: the key this publication sets (or removes). */
  readonly key?: string;
  /** Map channels: the key was removed (data is then empty). */
  readonly removed?: boolean;
}

export interface StreamPosition {
  readonly offset: number;
  readonly epoch: string;
}
