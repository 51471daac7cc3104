/**
 * A raw protocol client over `ws`, for what the SDK cannot express: garbage
 * frames, several commands in one frame, never answering pings, never
 * reading, counting frames on the wire.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { TestContextLike } from './scope.js';
import { waitFor } from './wait.js';

export { WebSocket };

export interface RawOptions {
  /** Answer the server's pings (default true). */
  answerPings?: boolean;
  /** Extra upgrade request headers (Origin, Cookie, X-Tenant, …). */
  headers?: Record<string, string>;
  /** Passed to the `ws` client as they are (e.g. perMessageDeflate). */
  ws?: WebSocket.ClientOptions;
}

/**
 * Sends what it is told, answers pings only when asked to, records every
 * frame and message and the close code. Emits 'message' per message,
 * 'ping' per server ping and 'closed' ({code, reason}) once.
 */
export class RawClient extends EventEmitter {
  readonly messages: any[] = [];
  /** Every text frame as received (one frame may hold several newline-joined messages). */
  readonly frames: string[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;

  constructor(
    readonly ws: WebSocket,
    public answerPings = true,
  ) {
    super();
    ws.on('message', (data: WebSocket.RawData) => {
      const text = data.toString();
      this.frames.push(text);
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let msg: any;
        try {
          msg = JSON.parse(line);
        } catch {
          msg = { unparsable: line };
        }
        this.messages.push(msg);
        if (msg && typeof msg === 'object' && Object.keys(msg).length === 0) {
          this.emit('ping');
          if (this.answerPings && ws.readyState === WebSocket.OPEN) ws.send('{}');
        }
        this.emit('message', msg);
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        const c = { code, reason: this.closeReason };
        resolve(c);
        this.emit('closed', c);
      }),
    );
    ws.on('error', () => undefined);
  }

  /** Opens a socket to `server.ws` (terminated when `t` ends) and resolves once it is open. */
  static async open(t: TestContextLike, server: { readonly ws: string }, opts: RawOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(server.ws, { ...(opts.ws ?? {}), headers: { ...(opts.ws?.headers ?? {}), ...(opts.headers ?? {}) } });
    const c = new RawClient(ws, opts.answerPings ?? true);
    t.after(() => {
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  send(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** Sends one command with a fresh id; resolves with its reply. */
  async command(method: string, params: unknown = {}, ms = 5000): Promise<any> {
    const id = this.nextId++;
    const reply = this.reply(id, ms);
    this.ws.send(JSON.stringify({ id, [method]: params }));
    return reply;
  }

  /** The reply with this id (already received or the next); rejects when the socket closes first or after `ms`. */
  reply(id: number, ms = 5000): Promise<any> {
    const found = this.messages.find((m) => m && m.id === id);
    if (found) return Promise.resolve(found);
    if (this.closeCode !== undefined) return Promise.reject(new Error(`closed with ${this.closeCode} before reply ${id}`));
    return waitFor(this, 'message', { ms, filter: (m: any) => m && m.id === id, failOn: 'closed' });
  }

  async connect(token: string): Promise<any> {
    const r = await this.command('connect', { token });
    if (r.error) throw new Error(`connect failed: ${JSON.stringify(r.error)}`);
    return r.connect;
  }

  /** Resolves with the close code and reason; rejects if the socket is still open after `ms`. */
  async closedWithin(ms = 5000): Promise<{ code: number; reason: string }> {
    if (this.closeCode !== undefined) return { code: this.closeCode, reason: this.closeReason };
    return waitFor(this, 'closed', { ms }).catch(() => {
      throw new Error(`socket still open after ${ms} ms`);
    });
  }
}
