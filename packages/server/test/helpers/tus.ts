/**
 * Uploads with the real tus client (`tus-js-client` in Node), sending the
 * tus checksum extension's `Upload-Checksum: sha256 <base64>` with each
 * PATCH (tus-js-client has no option for it: the header is computed from
 * the chunk the request carries, in `onBeforeRequest`).
 */
import { createHash } from 'node:crypto';
import { Upload, type HttpRequest, type UploadOptions } from 'tus-js-client';

export const sha256hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface TusRun {
  readonly upload: Upload;
  /** Upload-Offset of every PATCH sent, in order. */
  readonly patchOffsets: number[];
  /** Settles when the upload succeeds (the upload URL) or fails. */
  readonly done: Promise<string>;
}

export interface TusOptions extends Partial<UploadOptions> {
  /** Token sent as Authorization: Bearer. */
  token?: string;
  /** Make the checksum of each chunk wrong (a tampered chunk, seen from the server). */
  tamper?: boolean;
  /** Send no Upload-Checksum. */
  noChecksum?: boolean;
}

/** Starts an upload of `data` to `endpoint` with `metadata`; `opts` are passed to tus-js-client. */
export function tusUpload(data: Buffer, opts: TusOptions): TusRun {
  const chunkSize = opts.chunkSize ?? 64 * 1024;
  const patchOffsets: number[] = [];
  let upload!: Upload;
  const done = new Promise<string>((resolve, reject) => {
    upload = new Upload(data as unknown as File, {
      chunkSize,
      retryDelays: null,
      storeFingerprintForResuming: false,
      ...opts,
      headers: { ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}), ...(opts.headers ?? {}) },
      onBeforeRequest(req: HttpRequest) {
        if (req.getMethod() === 'PATCH') {
          const offset = Number(req.getHeader('Upload-Offset'));
          patchOffsets.push(offset);
          if (!opts.noChecksum) {
            const chunk = Buffer.from(data.subarray(offset, Math.min(offset + chunkSize, data.length)));
            if (opts.tamper) chunk[0] = chunk[0]! ^ 0xff;
            req.setHeader('Upload-Checksum', 'sha256 ' + createHash('sha256').update(chunk).digest('base64'));
          }
        }
        return opts.onBeforeRequest?.(req);
      },
      onSuccess: () => resolve(upload.url ?? ''),
      onError: (e) => reject(e),
    });
    upload.start();
  });
  return { upload, patchOffsets, done };
}
