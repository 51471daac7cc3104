import type { Command } from './commands.js';
import type { ClientInfo, Publication, RawJSON } from './types.js';

/** The client protocol's encodings. JSON today; Protobuf is next (same commands, binary frames). */
export type Encoding = 'json' | 'protobuf';

/**
 * One encoding of the client protocol: how a transport's frames become
 * commands and how replies and pushes become bytes. Sessions and the hub
 * speak only through this, so a publication is encoded once per node per
 * encoding (see `publicationBytes` in hub/) whatever mix of clients listens.
 *
 * Result objects handed to `reply` are plain objects whose embedded values
 * (`data`, publications, client info) come from this codec's `data`,
 * `publications` and `clientInfo`, so each encoding decides their form.
 */
export interface Codec {
  readonly encoding: Encoding;
  /** A small dense number per encoding: the slot of per-publication byte caches. */
  readonly slot: number;
  /** Splits one frame into commands; a malformed frame throws DisconnectError. */
  decode(frame: Buffer, isBinary: boolean): Command[];
  reply(id: number, method: string, result: unknown): Buffer;
  error(id: number, err: { code: number; message: string; temporary?: boolean }): Buffer;
  /** The server's ping (the client answers with an empty command). */
  ping(): Buffer;
  publicationPush(channel: string, pub: Publication): Buffer;
  joinPush(channel: string, info: ClientInfo): Buffer;
  leavePush(channel: string, info: ClientInfo): Buffer;
  subscribePush(channel: string, result: Record<string, unknown>): Buffer;
  unsubscribePush(channel: string, code: number, reason: string): Buffer;
  refreshPush(expires: boolean, ttl: number): Buffer;
  messagePush(data: RawJSON): Buffer;
  /** A payload (`data`, `info`) as this encoding embeds it in a result. */
  data(raw: RawJSON): unknown;
  /** Publications as they appear in history and recovery results. */
  publications(pubs: readonly Publication[]): unknown;
  clientInfo(info: ClientInfo): unknown;
}
