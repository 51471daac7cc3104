import type { Command } from './commands.js';
import type { ClientInfo, Publication, RawJSON } from './types.js';

/** The client protocol's encodings. JSON today; Protobuf is next (same commands, binary frames). */
export type Encoding = 'json' | 'protobuf';

/**
 * How a publication's payload reaches one subscriber: `'plain'` as usual;
 * `'full'` whole, to a subscription that negotiated delta compression (the
 * JSON encoding then sends the payload as a JSON string, as the SDK expects);
 * or a fossil delta against the previous payload the subscriber received.
 */
export type PayloadForm = 'plain' | 'full' | Buffer;

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
  /**
   * A publication push routed by channel name, or by the subscription's
   * numeric id when `id` > 0 (channel compaction), with its payload in the
   * given form (delta compression).
   */
  publicationPushAs(channel: string, id: number, pub: Publication, form: PayloadForm): Buffer;
  /** Join/leave pushes; `id` > 0 routes them by the subscription's id instead of the channel name. */
  joinPush(channel: string, info: ClientInfo, id?: number): Buffer;
  leavePush(channel: string, info: ClientInfo, id?: number): Buffer;
  subscribePush(channel: string, result: Record<string, unknown>): Buffer;
  unsubscribePush(channel: string, code: number, reason: string): Buffer;
  refreshPush(expires: boolean, ttl: number): Buffer;
  messagePush(data: RawJSON): Buffer;
  /** A payload (`data`, `info`) as this encoding embeds it in a result. */
  data(raw: RawJSON): unknown;
  /** Publications as they appear in history and recovery results. */
  publications(pubs: readonly Publication[]): unknown;
  /** One publication of a recovery result in the given payload form. */
  publicationAs(pub: Publication, form: PayloadForm): unknown;
  clientInfo(info: ClientInfo): unknown;
}
