import protobuf from 'protobufjs/light.js';

/**
 * One `/emulation` request: commands for the session `session` held by node
 * `node`, sent by a client whose stream (http_stream, sse) is a separate
 * request, possibly to another node. `data` is the commands as the stream's
 * codec reads a frame: JSON text (newline-separated commands) or Protobuf
 * length-delimited commands.
 */
export interface EmulationRequest {
  readonly node: string;
  readonly session: string;
  readonly data: Buffer;
  /** Protobuf commands (binary), else JSON text. */
  readonly binary: boolean;
}

export class EmulationRequestError extends Error {}

/**
 * Parses an emulation request body. JSON (`{"session","node","data"}`,
 * data a string holding the JSON commands, as centrifuge-js sends it) unless
 * the Content-Type is application/octet-stream: then a Protobuf
 * `EmulationRequest` (node = 1, session = 2, data = 3).
 */
export function parseEmulationRequest(body: Buffer, binary: boolean): EmulationRequest {
  return binary ? parseProtobuf(body) : parseJson(body);
}

function parseJson(body: Buffer): EmulationRequest {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new EmulationRequestError('malformed JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EmulationRequestError('body must be an object');
  const o = v as Record<string, unknown>;
  if (typeof o.session !== 'string' || o.session === '') throw new EmulationRequestError('session must be a non-empty string');
  if (o.node !== undefined && typeof o.node !== 'string') throw new EmulationRequestError('node must be a string');
  if (typeof o.data !== 'string') throw new EmulationRequestError('data must be a string');
  return { session: o.session, node: (o.node as string | undefined) ?? '', data: Buffer.from(o.data), binary: false };
}

function parseProtobuf(body: Buffer): EmulationRequest {
  let node = '';
  let session = '';
  let data: Buffer = Buffer.alloc(0);
  try {
    const r = protobuf.Reader.create(body);
    while (r.pos < r.len) {
      const tag = r.uint32();
      switch (tag >>> 3) {
        case 1:
          node = r.string();
          break;
        case 2:
          session = r.string();
          break;
        case 3: {
          const b = r.bytes();
          data = Buffer.from(b.buffer, b.byteOffset, b.length);
          break;
        }
        default:
          r.skipType(tag & 7);
      }
    }
  } catch {
    throw new EmulationRequestError('malformed Protobuf');
  }
  if (session === '') throw new EmulationRequestError('session must be a non-empty string');
  return { node, session, data, binary: true };
}
