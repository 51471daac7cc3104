import type { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Server as TusServer } from '@tus/server';
import type { Upload } from '@tus/utils';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import type { Config } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { FileAuth, FileRefusal, type FileAuthDeps, type FilePrincipal } from './auth.js';
import { sendFile } from './download.js';
import { filesPrefix } from './mount.js';
import { ChecksumFileStore, chunkContext, type ChunkContext } from './store.js';

/** What the file service needs from its node. */
export interface FileServiceDeps extends FileAuthDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Publishes through the node's normal path (history, recovery, all nodes). */
  readonly publish: (channel: string, data: unknown, opts: { idempotencyKey: string }) => Promise<unknown>;
}

/** The publication a finished upload sends to its channel (`{"file": FileInfo}`). */
export interface FileInfo {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  readonly type: string;
  readonly sha256: string;
  readonly user: string;
}

/** Upload ids are server-generated: 32 hex digits, nothing a path trick can hide in. */
const ID = /^[0-9a-f]{32}$/;

interface RequestState extends ChunkContext {
  principal?: FilePrincipal;
}

const requestState = chunkContext as AsyncLocalStorage<RequestState>;

const json = (status: number, message: string) => JSON.stringify({ error: { code: status, message } });

/**
 * Resumable uploads (the tus protocol, served by @tus/server over a file
 * store) and downloads, under `files.path`. Only the parts tus leaves to the
 * application are ours: who may upload to which channel, the per-chunk
 * checksum (store.ts), the publication when a file is complete, downloads
 * with ranges and signed URLs, and the expiry sweep.
 */
export class FileService {
  readonly store: ChecksumFileStore;
  readonly auth: FileAuth;
  readonly prefix: string;
  private readonly tus: TusServer;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cfg: Config['files'],
    private readonly deps: FileServiceDeps,
  ) {
    if (!cfg.dir) throw new Error('files.dir must be set when files.enabled is true');
    this.prefix = filesPrefix(cfg.path);
    // Made here, synchronously: a directory that cannot be made fails the start, not a callback later.
    mkdirSync(resolve(cfg.dir), { recursive: true });
    if (!cfg.secret) deps.log.warn('files.secret is empty: upload tokens and signed URLs are valid on this process only');
    this.auth = new FileAuth(cfg.secret, deps);
    this.store = new ChecksumFileStore({ directory: resolve(cfg.dir), expirationPeriodInMilliseconds: cfg.expire_after });
    this.tus = new TusServer({
      path: this.prefix,
      datastore: this.store,
      relativeLocation: true,
      namingFunction: () => randomBytes(16).toString('hex'),
      maxSize: () => Math.min(cfg.max_size, requestState.getStore()?.principal?.maxSize ?? Infinity),
      exposedHeaders: ['Upload-Checksum', 'Tus-Checksum-Algorithm'],
      allowedHeaders: ['Upload-Checksum'],
      onUploadCreate: async (_req, upload) => this.onCreate(upload),
      onIncomingRequest: async (req, id) => {
        if (req.method === 'POST') return;
        const upload = await this.checkOwner(id);
        // A finished upload whose publication failed (engine down): the client's next HEAD publishes it.
        if (req.method === 'HEAD' && upload.offset === upload.size && (await this.store.unpublished(id))) await this.onFinish(upload);
      },
      onUploadFinish: async (_req, upload) => {
        await this.onFinish(upload);
        return {};
      },
    });
  }

  /** Handles one request under `files.path`. Never throws. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let status = 500;
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const rest = url.pathname.slice(this.prefix.length).replace(/^\/+/, '');
      if (method === 'GET') status = await this.download(req, res, rest, url.searchParams);
      else status = await this.upload(req, res, method, rest);
    } catch (e) {
      if (res.headersSent) {
        // The client went away during a download: nothing to answer, nothing to log.
        status = res.statusCode;
        res.destroy();
        return;
      }
      status = e instanceof FileRefusal ? e.status : 500;
      if (status === 500) this.deps.log.error({ err: e instanceof Error ? e.message : String(e) }, 'file request failed');
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Tus-Resumable': '1.0.0' });
      res.end(json(status, e instanceof FileRefusal ? e.message : 'internal server error'));
    } finally {
      this.deps.metrics.fileRequests.labels(method.length <= 7 ? method : 'OTHER', String(status)).inc();
      if (status >= 400 && status < 500) this.deps.metrics.badInput.labels(`file_${status}`).inc();
    }
  }

  private async upload(req: IncomingMessage, res: ServerResponse, method: string, rest: string): Promise<number> {
    const state: RequestState = {};
    if (method !== 'OPTIONS') {
      if (method === 'POST' ? rest !== '' : !ID.test(rest)) throw new FileRefusal(404, 'not found');
      state.principal = await this.auth.principal(req.headers.authorization);
      const sum = req.headers['upload-checksum'];
      if (method === 'PATCH' && typeof sum === 'string') {
        const m = /^(\S+) ([A-Za-z0-9+/=]+)$/.exec(sum.trim());
        if (!m || m[1] !== 'sha256') throw new FileRefusal(400, 'Upload-Checksum: only "sha256 <base64>" is supported');
        const digest = Buffer.from(m[2]!, 'base64');
        if (digest.length !== 32) throw new FileRefusal(400, 'Upload-Checksum: a sha256 digest is 32 bytes');
        state.checksum = digest;
      }
    }
    const response = await requestState.run(state, () => this.tus.handleWeb(new NodeRequest({ req, res })));
    if (method === 'OPTIONS') response.headers.set('Tus-Checksum-Algorithm', 'sha256');
    let out = response;
    if (response.status >= 400) {
      // tus answers errors in text; ours are JSON like every other refusal.
      const text = (await response.text()).trim();
      const headers = new Headers(response.headers);
      headers.set('Content-Type', 'application/json; charset=utf-8');
      headers.delete('Content-Length');
      out = new Response(json(response.status, text || 'refused'), { status: response.status, headers });
    }
    if (state.accepted) this.deps.metrics.fileBytes.labels('in').inc(state.accepted);
    // A client that went away mid-PATCH leaves a closed response, which sendNodeResponse would wait on forever.
    if (res.destroyed) await out.body?.cancel();
    else await Promise.race([sendNodeResponse(res, out), new Promise((r) => res.once('close', r))]);
    return response.status;
  }

  /** POST: the channel named in Upload-Metadata must accept files from this principal; the owner is recorded. */
  private async onCreate(upload: Upload): Promise<{ metadata: Record<string, string | null> }> {
    const who = requestState.getStore()?.principal;
    if (!who) throw { status_code: 401, body: 'unauthorized' };
    const meta = upload.metadata ?? {};
    const channel = meta.channel;
    if (!channel) throw { status_code: 400, body: 'Upload-Metadata must name the channel ("channel")' };
    try {
      this.auth.checkAttach(who, channel);
    } catch (e) {
      if (e instanceof FileRefusal) throw { status_code: e.status, body: e.message };
      throw e;
    }
    return { metadata: { ...meta, sb_user: who.user } };
  }

  /** PATCH, HEAD, DELETE: only the uploader (same user; an upload token for the same channel). */
  private async checkOwner(id: string): Promise<Upload> {
    const who = requestState.getStore()?.principal;
    const upload = await this.store.getUpload(id);
    const meta = upload.metadata ?? {};
    if (!who || meta.sb_user !== who.user || (who.channel !== undefined && who.channel !== meta.channel)) {
      throw { status_code: 403, body: 'permission denied: not your upload' };
    }
    return upload;
  }

  private async onFinish(upload: Upload): Promise<void> {
    const meta = upload.metadata ?? {};
    const sha256 = await this.store.sha256(upload.id);
    const file: FileInfo = {
      id: upload.id,
      name: safeName(meta.filename ?? meta.name ?? ''),
      size: upload.size ?? upload.offset,
      type: meta.filetype ?? meta.type ?? 'application/octet-stream',
      sha256: sha256 ?? '',
      user: meta.sb_user ?? '',
    };
    try {
      await this.deps.publish(meta.channel!, { file }, { idempotencyKey: 'file:' + upload.id });
    } catch (e) {
      this.deps.log.warn(
        { id: upload.id, err: e instanceof Error ? e.message : String(e) },
        'file publication failed; the next HEAD retries',
      );
      throw e;
    }
    await this.store.markPublished(upload.id);
    this.deps.metrics.fileUploads.inc();
  }

  private async download(req: IncomingMessage, res: ServerResponse, id: string, query: URLSearchParams): Promise<number> {
    if (!ID.test(id)) throw new FileRefusal(404, 'not found');
    let upload: Upload;
    try {
      upload = await this.store.getUpload(id);
    } catch {
      throw new FileRefusal(404, 'not found');
    }
    const meta = upload.metadata ?? {};
    if (query.has('sig') || query.has('expires')) {
      if (!this.auth.signatureValid(id, query.get('expires'), query.get('sig'))) {
        throw new FileRefusal(403, 'permission denied: bad or expired signature');
      }
    } else {
      this.auth.checkDownload(await this.auth.principal(req.headers.authorization), meta.channel ?? '');
    }
    if (upload.size === undefined || upload.offset !== upload.size) throw new FileRefusal(409, 'the upload is not finished');
    const sent = await sendFile(
      res,
      {
        path: join(this.store.directory, id),
        size: upload.size,
        name: safeName(meta.filename ?? meta.name ?? ''),
        type: meta.filetype ?? meta.type ?? '',
        sha256: await this.store.sha256(id),
      },
      req.headers.range,
      typeof req.headers['if-range'] === 'string' ? req.headers['if-range'] : undefined,
    );
    this.deps.metrics.fileBytes.labels('out').inc(sent);
    return res.statusCode;
  }

  /** An upload token for one user and channel (the backend gives it to its client). */
  uploadToken(opts: { user: string; channel: string; ttl?: number; maxSize?: number }): Promise<{ token: string; expireAt: number }> {
    return this.auth.uploadToken({
      user: opts.user,
      channel: opts.channel,
      ttlMs: opts.ttl ? opts.ttl * 1000 : this.cfg.token_ttl,
      maxSize: opts.maxSize,
    });
  }

  /** A download path with a signature that expires (`ttl` seconds, default files.url_ttl). */
  signedUrl(id: string, ttl?: number): { url: string; expires: number } {
    if (!ID.test(id)) throw new FileRefusal(400, 'bad file id');
    const expires = Math.floor((Date.now() + (ttl ? ttl * 1000 : this.cfg.url_ttl)) / 1000);
    return { url: `${this.prefix}/${id}?${this.auth.signedQuery(id, expires)}`, expires };
  }

  /** Deletes uploads not finished within files.expire_after; returns how many. */
  async sweep(): Promise<number> {
    const n = await this.store.deleteExpired();
    if (n > 0) this.deps.metrics.fileExpired.inc(n);
    return n;
  }

  start(): void {
    if (this.cfg.cleanup_interval <= 0 || this.cfg.expire_after <= 0 || this.sweepTimer) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((e: unknown) => this.deps.log.warn({ err: String(e) }, 'file sweep failed'));
    }, this.cfg.cleanup_interval);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }
}

/** A file name for display and Content-Disposition: the last path segment, without control characters. */
export function safeName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, '');
  const base = clean.split(/[/\\]/).pop() ?? '';
  return (base === '.' || base === '..' ? '' : base).slice(0, 255);
}
