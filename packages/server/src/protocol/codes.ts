/**
 * Error and disconnect codes of the Centrifugo client protocol v2
 * (centrifugal/centrifuge errors.go and disconnect.go).
 */

export interface ProtocolError {
  readonly code: number;
  readonly message: string;
  readonly temporary?: boolean;
}

export const Errors = {
  internal: { code: 100, message: 'internal server error', temporary: true },
  unauthorized: { code: 101, message: 'unauthorized' },
  unknownChannel: { code: 102, message: 'unknown channel' },
  permissionDenied: { code: 103, message: 'permission denied' },
  methodNotFound: { code: 104, message: 'method not found' },
  alreadySubscribed: { code: 105, message: 'already subscribed' },
  limitExceeded: { code: 106, message: 'limit exceeded' },
  badRequest: { code: 107, message: 'bad request' },
  notAvailable: { code: 108, message: 'not available' },
  tokenExpired: { code: 109, message: 'token expired' },
  expired: { code: 110, message: 'expired' },
  tooManyRequests: { code: 111, message: 'too many requests', temporary: true },
  unrecoverablePosition: { code: 112, message: 'unrecoverable position' },
  // Switchboard's own (docs/LOCKS.md): field locks and fencing tokens.
  /** lock.acquire of a key whose live lease another client holds. */
  lockHeld: { code: 150, message: 'lock held' },
  /** A publication carries a fencing token older than the key's current one. */
  staleToken: { code: 151, message: 'stale fencing token' },
  /** Renew or release of a lease that is not live with this token and holder (or a token never issued). */
  lockNotHeld: { code: 152, message: 'lock not held' },
} as const satisfies Record<string, ProtocolError>;

export interface Disconnect {
  readonly code: number;
  readonly reason: string;
}

/** 3000–3499: the client reconnects; 3500–3999: terminal. */
export const Disconnects = {
  connectionClosed: { code: 3000, reason: 'connection closed' },
  shutdown: { code: 3001, reason: 'shutdown' },
  serverError: { code: 3004, reason: 'internal server error' },
  expired: { code: 3005, reason: 'connection expired' },
  subExpired: { code: 3006, reason: 'subscription expired' },
  slow: { code: 3008, reason: 'slow' },
  writeError: { code: 3009, reason: 'write error' },
  insufficientState: { code: 3010, reason: 'insufficient state' },
  forceReconnect: { code: 3011, reason: 'force reconnect' },
  noPong: { code: 3012, reason: 'no pong' },
  tooManyRequests: { code: 3013, reason: 'too many requests' },
  invalidToken: { code: 3500, reason: 'invalid token' },
  badRequest: { code: 3501, reason: 'bad request' },
  stale: { code: 3502, reason: 'stale' },
  forceNoReconnect: { code: 3503, reason: 'force disconnect' },
  connectionLimit: { code: 3504, reason: 'connection limit' },
  channelLimit: { code: 3505, reason: 'channel limit' },
  inappropriateProtocol: { code: 3506, reason: 'inappropriate protocol' },
  permissionDenied: { code: 3507, reason: 'permission denied' },
  notAvailable: { code: 3508, reason: 'not available' },
  tooManyErrors: { code: 3509, reason: 'too many errors' },
} as const satisfies Record<string, Disconnect>;

/** Unsubscribe push codes: < 2500 terminal for the subscription, >= 2500 the client resubscribes. */
export const Unsubscribes = {
  server: { code: 2000, reason: 'server unsubscribe' },
  insufficientState: { code: 2500, reason: 'insufficient state' },
  expired: { code: 2501, reason: 'subscription expired' },
} as const satisfies Record<string, Disconnect>;

/** An error raised inside the server that crosses the wire as a protocol error reply. */
export class ReplyError extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
    this.name = 'ReplyError';
  }
}

/** An error raised inside the server that ends the connection with a disconnect code. */
export class DisconnectError extends Error {
  /** `kind`: what was wrong with the input, for bad-input metrics (e.g. `malformed_frame`). */
  constructor(
    readonly disconnect: Disconnect,
    readonly kind?: string,
  ) {
    super(disconnect.reason);
    this.name = 'DisconnectError';
  }
}
