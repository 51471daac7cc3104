import { createReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import rangeParser from 'range-parser';

export interface StoredFile {
  readonly path: string;
  readonly size: number;
  readonly name: string;
  readonly type: string;
  readonly sha256?: string;
}

const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;

/**
 * Sends a stored file, or the one byte range asked for (206; several ranges
 * get the whole file, as RFC 9110 allows; an unsatisfiable range 416). Always
 * as an attachment with nosniff: the bytes and type come from a user, and
 * must not render as a page of this origin. Returns the bytes sent.
 */
export async function sendFile(res: ServerResponse, file: StoredFile, rangeHeader: string | undefined, ifRange?: string): Promise<number> {
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', MIME.test(file.type) ? file.type : 'application/octet-stream');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
  res.setHeader('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(file.name || 'file')}`);
  res.setHeader('Cache-Control', 'private, no-cache');
  const etag = file.sha256 ? `"${file.sha256}"` : undefined;
  if (etag) res.setHeader('ETag', etag);
  let start = 0;
  let end = file.size - 1;
  let status = 200;
  if (rangeHeader && (!ifRange || ifRange === etag)) {
    const r = rangeParser(file.size, rangeHeader, { combine: true });
    if (r === -1) {
      res.writeHead(416, { 'Content-Range': `bytes */${file.size}`, 'Content-Type': 'application/json; charset=utf-8' });
      res.end('{"error":{"code":416,"message":"range not satisfiable"}}');
      return 0;
    }
    if (r !== -2 && r.type === 'bytes' && r.length === 1) {
      start = r[0]!.start;
      end = r[0]!.end;
      status = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${file.size}`);
    }
  }
  const length = file.size === 0 ? 0 : end - start + 1;
  res.writeHead(status, { 'Content-Length': String(length) });
  if (length === 0) {
    res.end();
    return 0;
  }
  await pipeline(createReadStream(file.path, { start, end }), res);
  return length;
}
