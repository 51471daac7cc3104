import { Disconnects, DisconnectError } from './codes.js';

/** Client → server methods of protocol v2. */
export const METHODS = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'presence_stats',
  'history',
  'rpc',
  'send',
  'refresh',
  'sub_refresh',
] as const;
export type Method = (typeof METHODS)[number];
const METHOD_SET: ReadonlySet<string> = new Set(METHODS);

export type Params = Readonly<Record<string, unknown>>;

export interface Command {
  readonly id: number;
  /** undefined for an empty command: the client's pong. */
  readonly method: Method | undefined;
  readonly params: Params;
}

const EMPTY: Params = Object.freeze({});

/**
 * Splits one WebSocket text frame into commands (newline-delimited JSON).
 * A frame that is not valid JSON or whose commands are not objects is a
 * protocol violation: the connection is closed with 3501.
 */
export function decodeFrame(text: string): Command[] {
  const out: Command[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    out.push(decodeCommand(line));
  }
  return out;
}

function decodeCommand(line: string): Command {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new DisconnectError(Disconnects.badRequest);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DisconnectError(Disconnects.badRequest);
  }
  const obj = parsed as Record<string, unknown>;
  let id = 0;
  if (obj.id !== undefined) {
    if (typeof obj.id !== 'number' || !Number.isSafeInteger(obj.id) || obj.id < 0) {
      throw new DisconnectError(Disconnects.badRequest);
    }
    id = obj.id;
  }
  let method: Method | undefined;
  let params: Params = EMPTY;
  for (const key of Object.keys(obj)) {
    if (key === 'id') continue;
    if (METHOD_SET.has(key)) {
      if (method !== undefined) throw new DisconnectError(Disconnects.badRequest);
      method = key as Method;
      const p = obj[key];
      if (p === null || p === undefined) params = EMPTY;
      else if (typeof p === 'object' && !Array.isArray(p)) params = p as Params;
      else throw new DisconnectError(Disconnects.badRequest);
    }
  }
  if (method === undefined) {
    // Unknown method names get 104 (when there is an id to answer); an
    // empty command is the client's pong.
    const unknown = Object.keys(obj).some((k) => k !== 'id');
    if (unknown) return { id, method: undefined, params: UNKNOWN };
  }
  if (method !== undefined && method !== 'send' && id === 0) {
    throw new DisconnectError(Disconnects.badRequest);
  }
  return { id, method, params };
}

/** Sentinel params of a command whose method we do not know. */
export const UNKNOWN: Params = Object.freeze({ __unknown: true });
