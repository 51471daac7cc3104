/** Which wire protocol a load-generator connection speaks. */
export type ClientKind = 'raw' | 'switchboard' | 'switchboard-protobuf' | 'socketio';

/** HMAC secret of the Switchboard systems; each bench connection sends a token signed with it (so every connect verifies a JWT). */
export const BENCH_TOKEN_SECRET = 'bench-secret';

/** Payload every publication carries: per-channel sequence and send time (µs, CLOCK_MONOTONIC). */
export interface BenchPayload {
  s: number;
  t: number;
  p?: string;
}

/** How connection i picks its channels: every conn joins `shared`, plus `${personalPrefix}${i}` if set. */
export interface ChannelPlan {
  shared: string[];
  personalPrefix?: string;
}

export interface ConnectRequest {
  /** 'prepare': make the clients (and their tokens) only, before a measured connect phase; 'connect': make them unless prepared, and open them. */
  type: 'connect' | 'prepare';
  kind: ClientKind;
  url: string;
  /** socket.io transports; undefined = library default (polling, then upgrade). */
  transports?: string[];
  /** Global index range [start, end) of the connections this worker owns. */
  start: number;
  end: number;
  plan: ChannelPlan;
  /** Source addresses to spread connections over (localAddress). */
  sources: string[];
  /** Max connection attempts in flight in this worker. */
  concurrency: number;
  /** Give up on one connection after this long. */
  timeoutMs: number;
  /** Ask for recoverable subscriptions (Switchboard). */
  recoverable: boolean;
}

export type ParentToWorker =
  | ConnectRequest
  | { type: 'reset' }
  | { type: 'report' }
  /** Drop all, reconnect; attempts not started before `deadlineMs` (from now) count as failed. */
  | { type: 'drop'; timeoutMs: number; deadlineMs: number }
  | { type: 'close' };

export interface WorkerReport {
  /** Publications received for the first time (in sequence or after a gap). */
  unique: number;
  /** Publications whose sequence was not above the last one seen on that conn/channel. */
  dup: number;
  /** Sequence numbers skipped (seen a gap while connected). */
  gaps: number;
  /** HDR histogram of latencies in µs, compressed base64. */
  hist: string;
  /** Connections closed by the server or by an error since the last reset. */
  unexpectedCloses: number;
  closeCodes: Record<string, number>;
  openConns: number;
  /** Subscribe replies that said recovered:false (Switchboard only). */
  notRecovered: number;
}

export interface ConnectResult {
  ok: number;
  failed: number;
  ms: number;
  errors: Record<string, number>;
  /** channel → number of conns of this worker subscribed to it */
  subs: Record<string, number>;
}

export type WorkerToParent =
  | { type: 'ready' }
  | { type: 'connected'; result: ConnectResult }
  | { type: 'prepared' }
  | { type: 'report'; report: WorkerReport }
  | { type: 'resetDone' }
  | { type: 'dropped'; ok: number; failed: number; ms: number; errors: Record<string, number> }
  | { type: 'progress'; open: number; unique: number }
  | { type: 'error'; message: string };

export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
