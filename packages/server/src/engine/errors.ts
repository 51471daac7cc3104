/** Why an engine could not serve a command. */
export type UnavailableKind =
  /** The engine was closed. */
  | 'closed'
  /** No connection to the backend (Redis down or reconnecting). */
  | 'disconnected'
  /** The circuit breaker is open: the backend failed repeatedly, commands fail fast. */
  | 'circuit_open'
  /** A command got no answer within io_timeout. */
  | 'timeout'
  /** The backend answered with an error (a busy or failing-over server, a script error). */
  | 'failed';

/**
 * The engine cannot serve now; the caller may retry later. Session and
 * server API answer it with protocol error 100 (internal, temporary) and log
 * it once per kind per interval: an outage is not a log line per command.
 */
export class EngineUnavailableError extends Error {
  override readonly name = 'EngineUnavailableError';

  constructor(
    readonly kind: UnavailableKind,
    detail?: string,
  ) {
    super(detail ? `engine unavailable (${kind}): ${detail}` : `engine unavailable (${kind})`);
  }
}
