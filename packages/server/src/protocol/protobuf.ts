import protobuf from 'protobufjs/light.js';
import { bytesToValue, rawToBytes } from './binary.js';
import type { Codec, PayloadForm } from './codec.js';
import { Disconnects, DisconnectError } from './codes.js';
import { METHODS, UNKNOWN, type Command, type Method, type Params } from './commands.js';
import { CommandType, ReplyType } from './protobuf-schema.js';
import type { ClientInfo, Publication, RawJSON } from './types.js';

/*
 * The Protobuf encoding of the client protocol (`?cf_protocol=protobuf`):
 * binary frames holding varint-length-delimited Command messages in and
 * Reply messages out, several simply concatenated per frame. Commands are
 * turned into the same params objects the JSON encoding produces (so the
 * session and its schemas are shared) and results into the Reply's message
 * fields. Payloads are bytes on this wire; see binary.ts for how they live
 * in the engine.
 */

const toObjectOptions: protobuf.IConversionOptions = { longs: Number };
const EMPTY: Params = Object.freeze({});

function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.length);
}

function encodeReply(reply: Record<string, unknown>): Buffer {
  return toBuffer(ReplyType.encodeDelimited(reply).finish());
}

/** A decoded request message as the JSON protocol's params: numbers for 64-bit fields, payload bytes as values. */
function paramsOf(method: Method, msg: protobuf.Message): Params {
  const type = CommandType.fields[method]!.resolvedType as protobuf.Type;
  const obj = type.toObject(msg, toObjectOptions);
  if ('data' in obj) {
    // empty bytes are no payload (as an absent field is in proto3): a publish without data is a 107
    const value = bytesToValue(obj.data as Uint8Array);
    if (value === undefined) delete obj.data;
    else obj.data = value;
  }
  return obj;
}

function decodeCommands(frame: Buffer): Command[] {
  const out: Command[] = [];
  const reader = protobuf.Reader.create(frame);
  while (reader.pos < reader.len) {
    const msg = CommandType.decodeDelimited(reader) as protobuf.Message & Record<string, unknown>;
    const id = (msg.id as number | undefined) ?? 0;
    let method: Method | undefined;
    let params: Params = EMPTY;
    for (const m of METHODS) {
      if (msg[m] == null || !Object.prototype.hasOwnProperty.call(msg, m)) continue;
      if (method !== undefined) throw new DisconnectError(Disconnects.badRequest);
      method = m;
      params = paramsOf(m, msg[m] as protobuf.Message);
    }
    if (method === undefined) {
      // an empty command is the client's pong; an id with no method we know gets 104
      out.push({ id, method: undefined, params: id > 0 ? UNKNOWN : EMPTY });
      continue;
    }
    if (method !== 'send' && id === 0) throw new DisconnectError(Disconnects.badRequest);
    out.push({ id, method, params });
  }
  return out;
}

function clientInfo(info: ClientInfo): Record<string, unknown> {
  return {
    user: info.user,
    client: info.client,
    conn_info: info.connInfo !== undefined ? rawToBytes(info.connInfo) : undefined,
    chan_info: info.chanInfo !== undefined ? rawToBytes(info.chanInfo) : undefined,
  };
}

function publication(pub: Publication): Record<string, unknown> {
  return {
    data: pub.removed ? undefined : rawToBytes(pub.data),
    info: pub.info !== undefined ? clientInfo(pub.info) : undefined,
    offset: pub.offset > 0 ? pub.offset : undefined,
    tags: pub.tags,
    time: pub.time,
    key: pub.key,
    removed: pub.removed || undefined,
  };
}

/** Protobuf payloads are bytes either way: a delta subscription's full payload is the plain one. */
function publicationAs(pub: Publication, form: PayloadForm): Record<string, unknown> {
  const p = publication(pub);
  if (typeof form !== 'string' && !pub.removed) {
    p.data = form;
    p.delta = true;
  }
  return p;
}

/** A push routed by channel name, or by subscription id (channel compaction). */
function push(channel: string, id: number, body: Record<string, unknown>): Buffer {
  return encodeReply({ push: id > 0 ? { id, ...body } : { channel, ...body } });
}

const PING = encodeReply({});

/** The Protobuf encoding: length-delimited Command/Reply messages in binary frames. */
export const protobufCodec: Codec = {
  encoding: 'protobuf',
  slot: 1,
  decode(frame: Buffer, isBinary: boolean): Command[] {
    if (!isBinary) throw new DisconnectError(Disconnects.badRequest, 'text_frame');
    try {
      return decodeCommands(frame);
    } catch (e) {
      if (e instanceof DisconnectError) throw e;
      // truncated messages, bad wire types, lengths past the frame: protobufjs throws Error/RangeError
      throw new DisconnectError(Disconnects.badRequest, 'malformed_protobuf');
    }
  },
  reply: (id, method, result) => encodeReply({ id, [method]: result ?? {} }),
  error: (id, err) => encodeReply({ id, error: { code: err.code, message: err.message, temporary: err.temporary || undefined } }),
  ping: () => PING,
  publicationPush: (channel, pub) => encodeReply({ push: { channel, pub: publication(pub) } }),
  publicationPushAs: (channel, id, pub, form) => push(channel, id, { pub: publicationAs(pub, form) }),
  joinPush: (channel, info, id = 0) => push(channel, id, { join: { info: clientInfo(info) } }),
  leavePush: (channel, info, id = 0) => push(channel, id, { leave: { info: clientInfo(info) } }),
  subscribePush: (channel, result) => encodeReply({ push: { channel, subscribe: result } }),
  unsubscribePush: (channel, code, reason) => encodeReply({ push: { channel, unsubscribe: { code, reason } } }),
  refreshPush: (expires, ttl) => encodeReply({ push: { refresh: { expires, ttl } } }),
  messagePush: (data: RawJSON) => encodeReply({ push: { message: { data: rawToBytes(data) } } }),
  data: (raw) => rawToBytes(raw),
  publications: (pubs) => pubs.map(publication),
  publicationAs,
  clientInfo,
};
