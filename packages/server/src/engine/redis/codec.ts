import type { ClientInfo, Publication, RawJSON } from '../../protocol/types.js';

/**
 * The compact encoding of what travels through Redis.
 *
 * A publication is stored in history (stream field "d") as its payload:
 *   `<time> <headerLength> <header><data>`
 * where header is JSON `{"u","c","ci","hi","t","dl","k","mk","rm"}` (info, tags, delta flag, conflation key,
 * map key and removal; empty when there are none) and data is the publication's raw JSON, spliced in and
 * sliced out verbatim (never re-parsed on the hot path).
 *
 * The publish script puts offset and epoch in front for PUB/SUB:
 *   `<offset> <epoch> <payload>`
 * Join and leave travel on the same PUB/SUB channel as `j<info>` / `l<info>`,
 * so they stay in order with publications.
 */

interface WireInfo {
  u: string;
  c: string;
  ci?: string;
  hi?: string;
}

interface Header extends Partial<WireInfo> {
  t?: Readonly<Record<string, string>>;
  /** The publication may go out as a fossil delta. */
  dl?: 1;
  /** The conflation key. */
  k?: string;
  /** Map channels: the key set or removed. */
  mk?: string;
  /** Map channels: 1 = the key was removed. */
  rm?: 1;
}

export function encodeInfo(info: ClientInfo): string {
  const w: WireInfo = { u: info.user, c: info.client };
  if (info.connInfo !== undefined) w.ci = info.connInfo;
  if (info.chanInfo !== undefined) w.hi = info.chanInfo;
  return JSON.stringify(w);
}

function infoOf(w: Partial<WireInfo>): ClientInfo {
  const info: { user: string; client: string; connInfo?: string; chanInfo?: string } = { user: w.u ?? '', client: w.c ?? '' };
  if (w.ci !== undefined) info.connInfo = w.ci;
  if (w.hi !== undefined) info.chanInfo = w.hi;
  return info;
}

export function decodeInfo(s: string): ClientInfo {
  return infoOf(JSON.parse(s) as WireInfo);
}

export function encodePayload(
  data: RawJSON,
  time: number,
  info?: ClientInfo,
  tags?: Readonly<Record<string, string>>,
  delta?: boolean,
  conflationKey?: string,
  mapKey?: string,
): string {
  let header = '';
  if (info || (tags && Object.keys(tags).length > 0) || delta || conflationKey !== undefined || mapKey !== undefined) {
    const h: Header = {};
    if (info) {
      h.u = info.user;
      h.c = info.client;
      if (info.connInfo !== undefined) h.ci = info.connInfo;
      if (info.chanInfo !== undefined) h.hi = info.chanInfo;
    }
    if (tags && Object.keys(tags).length > 0) h.t = tags;
    if (delta) h.dl = 1;
    if (conflationKey !== undefined) h.k = conflationKey;
    if (mapKey !== undefined) h.mk = mapKey;
    header = JSON.stringify(h);
  }
  return `${time} ${header.length} ${header}${data}`;
}

/** Decodes a payload starting at `start` of `s`. */
export function decodePayload(s: string, offset: number, start = 0): Publication {
  const sp1 = s.indexOf(' ', start);
  const sp2 = s.indexOf(' ', sp1 + 1);
  if (sp1 < 0 || sp2 < 0) throw new Error('malformed publication payload');
  const time = Number(s.slice(start, sp1));
  const hlen = Number(s.slice(sp1 + 1, sp2));
  const hstart = sp2 + 1;
  const data = s.slice(hstart + hlen);
  if (hlen === 0) return { offset, data, time };
  const h = JSON.parse(s.slice(hstart, hstart + hlen)) as Header;
  const pub: Publication = { offset, data, time, info: h.c !== undefined ? infoOf(h) : undefined, tags: h.t };
  if (h.dl !== 1 && h.k === undefined && h.mk === undefined) return pub;
  return {
    ...pub,
    ...(h.dl === 1 ? { delta: true } : {}),
    ...(h.k !== undefined ? { conflationKey: h.k } : {}),
    ...(h.mk !== undefined ? { key: h.mk } : {}),
    ...(h.rm === 1 ? { removed: true } : {}),
  };
}

export type PubSubMessage = { kind: 'pub'; epoch: string; pub: Publication } | { kind: 'join' | 'leave'; info: ClientInfo };

export function decodeMessage(s: string): PubSubMessage {
  const c = s.charCodeAt(0);
  if (c === 106 /* j */) return { kind: 'join', info: decodeInfo(s.slice(1)) };
  if (c === 108 /* l */) return { kind: 'leave', info: decodeInfo(s.slice(1)) };
  const sp1 = s.indexOf(' ');
  const sp2 = s.indexOf(' ', sp1 + 1);
  if (sp1 < 0 || sp2 < 0) throw new Error('malformed pub/sub message');
  const offset = Number(s.slice(0, sp1));
  const epoch = s.slice(sp1 + 1, sp2);
  return { kind: 'pub', epoch, pub: decodePayload(s, offset, sp2 + 1) };
}
