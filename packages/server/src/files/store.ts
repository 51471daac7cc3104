import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { createSHA256, type IHasher } from 'hash-wasm';

/** What the request layer in front of tus tells the store about the PATCH being written. */
export interface ChunkContext {
  /** The chunk's sha256 (raw bytes) from `Upload-Checksum: sha256 <base64>`, when the client sent one. */
  checksum?: Buffer;
  /** Set by the store when the chunk did not match: the layer answers 460. */
  mismatch?: boolean;
  /** Bytes the store accepted from this request (for metrics). */
  accepted?: number;
}

export const chunkContext = new AsyncLocalStorage<ChunkContext>();

/** tus's way to answer an error: a status and a text body (mapped to JSON by the request layer). */
export const CHECKSUM_MISMATCH = { status_code: 460, body: 'Checksum Mismatch' };

/** The whole file's running sha256: the hasher state after `offset` bytes, or the final digest. */
interface HashState {
  offset: number;
  state?: string;
  sha256?: string;
  /** The finished file's publication went out. */
  published?: boolean;
}

/**
 * The tus file store with the checksum extension and a whole-file sha256.
 *
 * Each chunk is hashed as it streams to disk. When the request carried
 * `Upload-Checksum`, a chunk whose digest differs is cut off again (the file
 * is truncated back to the chunk's offset, which is what FileStore reads as
 * the upload's offset) and the request is answered 460, as the tus checksum
 * extension says. The whole file's sha256 is computed incrementally: the
 * hasher state (hash-wasm can save and load it) is kept next to the upload
 * in `<id>.sum`, so a resume on another node sharing the directory carries
 * on where the last chunk ended; if the state is missing or behind (a crash
 * between the write and the save), the bytes on disk are hashed again.
 */
export class ChecksumFileStore extends FileStore {
  constructor(opts: { directory: string; expirationPeriodInMilliseconds: number }) {
    super(opts);
    this.extensions.push('checksum');
  }

  private sumPath(id: string): string {
    // Ids are checked by the request layer (server-generated hex); FileStore checks its own paths too.
    return join(this.directory, id + '.sum');
  }

  private async readSum(id: string): Promise<HashState | undefined> {
    try {
      return JSON.parse(await readFile(this.sumPath(id), 'utf8')) as HashState;
    } catch {
      return undefined;
    }
  }

  /** True when the file is finished but its publication has not gone out (it failed: the next HEAD retries). */
  async unpublished(id: string): Promise<boolean> {
    const s = await this.readSum(id);
    return s?.sha256 !== undefined && !s.published;
  }

  async markPublished(id: string): Promise<void> {
    const s = await this.readSum(id);
    if (s) await writeFile(this.sumPath(id), JSON.stringify({ ...s, published: true }));
  }

  /** The finished file's sha256 (hex), or undefined while it is not finished. */
  async sha256(id: string): Promise<string | undefined> {
    return (await this.readSum(id))?.sha256;
  }

  private async hasherAt(id: string, offset: number): Promise<IHasher> {
    const hasher = await createSHA256();
    hasher.init();
    const saved = await this.readSum(id);
    if (saved?.state && saved.offset === offset) {
      hasher.load(Buffer.from(saved.state, 'base64'));
      return hasher;
    }
    if (offset > 0) {
      await pipeline(createReadStream(join(this.directory, id), { start: 0, end: offset - 1 }), async (src: AsyncIterable<Buffer>) => {
        for await (const b of src) hasher.update(b);
      });
    }
    return hasher;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const ctx = chunkContext.getStore();
    const upload = await this.getUpload(id);
    const whole = await this.hasherAt(id, offset);
    const chunk = ctx?.checksum ? createHash('sha256') : undefined;
    const tap = new Transform({
      transform(b: Buffer, _enc, done) {
        whole.update(b);
        chunk?.update(b);
        done(null, b);
      },
    });
    // pipe() passes on neither errors nor a close without an end (a request cut off): the tap must end either way.
    readable.once('error', (e) => tap.destroy(e));
    readable.once('close', () => {
      if (!readable.readableEnded) tap.destroy(new Error('the request body broke off'));
    });
    let end: number;
    try {
      end = await super.write(readable.pipe(tap), id, offset);
    } catch (e) {
      // The request broke off mid-chunk: a chunk with a checksum cannot be verified, so none of it is kept.
      if (ctx?.checksum) await truncate(join(this.directory, id), offset);
      throw e;
    }
    if (chunk && ctx?.checksum && !chunk.digest().equals(ctx.checksum)) {
      await truncate(join(this.directory, id), offset);
      ctx.mismatch = true;
      throw CHECKSUM_MISMATCH;
    }
    if (ctx) ctx.accepted = (ctx.accepted ?? 0) + (end - offset);
    const done = upload.size !== undefined && end === upload.size;
    const next: HashState = done
      ? { offset: end, sha256: whole.digest('hex') }
      : { offset: end, state: Buffer.from(whole.save()).toString('base64') };
    await writeFile(this.sumPath(id), JSON.stringify(next));
    if (done) {
      // FileStore's expiry sweep reads the offset from the metadata record, which it never updates:
      // recording the final offset there keeps finished files out of the sweep.
      const info = await this.configstore.get(id);
      if (info) await this.configstore.set(id, { ...info, offset: end } as typeof info);
    }
    return end;
  }

  /** Idempotent: every node sweeps a shared directory, and two sweeps may pick the same expired upload. */
  override async remove(id: string): Promise<void> {
    await rm(join(this.directory, id), { force: true });
    await rm(join(this.directory, id + '.json'), { force: true });
    await rm(this.sumPath(id), { force: true });
  }
}
