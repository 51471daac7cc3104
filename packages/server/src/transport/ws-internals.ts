import type { WebSocket } from 'ws';

/**
 * The only place that reads `ws` private fields. What we rely on (pinned by
 * test/writer-ws-internals.test.ts, which fails if a `ws` upgrade changes it):
 * - `_socket`: the net.Socket the connection runs on (the upgrade's socket);
 * - `_extensions`: an object keyed by negotiated extension name, empty (or
 *   absent) when none was negotiated;
 * - without extensions ws's Sender writes each frame to `_socket` as soon as
 *   it is sent (it queues only while deflating), so a complete frame written
 *   to `_socket` directly keeps its order with the control frames ws writes.
 */
export interface RawSocket {
  write(b: Buffer): boolean;
  /** Bytes the socket holds that the kernel has not taken yet. */
  readonly writableLength: number;
  once(ev: 'drain', f: () => void): unknown;
}

interface WsInternals {
  _socket?: RawSocket;
  _extensions?: Record<string, unknown>;
}

/** The socket to write whole frames to, or undefined when ws must frame (an extension such as permessage-deflate is on). */
export function directSocket(ws: WebSocket): RawSocket | undefined {
  const internal = ws as unknown as WsInternals;
  if (!internal._socket) return undefined;
  if (internal._extensions && Object.keys(internal._extensions).length > 0) return undefined;
  return internal._socket;
}
