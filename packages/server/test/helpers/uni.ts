/**
 * Clients of the unidirectional transports as an app without an SDK writes
 * them: a POST whose response is newline-delimited JSON (uni_http_stream),
 * `eventsource` (uni_sse), a raw `ws` socket (uni_websocket). Each emits
 * every push it parses as 'push' and 'end' when the stream is over.
 */
import { EventEmitter } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { EventSource } from 'eventsource';
import { WebSocket } from 'ws';
import type { TestContextLike } from './scope.js';
import { waitFor } from './wait.js';

export type Push = Record<string, any>;

export class UniClient extends EventEmitter {
  readonly pushes: Push[] = [];
  ended = false;
  /** Close code of a uni_websocket (0 otherwise or while open). */
  closeCode = 0;
  constructor(readonly close: () => void) {
    super();
  }

  got(p: Push): void {
    this.pushes.push(p);
    this.emit('push', p);
  }

  finished(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
  }

  /** The next push (after those already seen) for which `filter` holds, or one already received. */
  async next(filter: (p: Push) => boolean, ms = 10_000): Promise<Push> {
    const seen = this.pushes.find(filter);
    if (seen) return seen;
    return waitFor<Push>(this, 'push', { ms, filter, failOn: 'end' });
  }

  /** Waits for the stream to end. */
  async ends(ms = 10_000): Promise<void> {
    if (!this.ended) await waitFor(this, 'end', { ms });
  }
}

export interface StreamResponse {
  status: number;
  headers: IncomingMessage['headers'];
  client: UniClient;
  /** The raw body text received so far. */
  text(): string;
}

/** POST `body` to `url`; resolves with the status once headers arrive, the client parses the NDJSON body. */
export function postStream(
  t: TestContextLike,
  url: string,
  body: string,
  headers: Record<string, string> = {},
  /** Parse the body as NDJSON pushes (false: only collect its text, e.g. SSE). */
  ndjson = true,
): Promise<StreamResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      let buf = '';
      const client = new UniClient(() => res.destroy());
      t.after(() => res.destroy());
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line !== '' && ndjson) client.got(JSON.parse(line) as Push);
        }
      });
      res.on('end', () => client.finished());
      res.on('close', () => client.finished());
      resolve({ status: res.statusCode ?? 0, headers: res.headers, client, text: () => text });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An EventSource on `url` (no automatic reconnect after the server ends the stream: closed on 'error'). */
export function openSse(t: TestContextLike, url: string): { es: EventSource; client: UniClient } {
  const es = new EventSource(url);
  const client = new UniClient(() => es.close());
  t.after(() => es.close());
  es.onmessage = (ev) => client.got(JSON.parse(ev.data as string) as Push);
  es.onerror = () => {
    es.close();
    client.finished();
  };
  return { es, client };
}

/** A raw WebSocket on `url`, sending `first` (the connect request) once open when given. */
export async function openUniWs(t: TestContextLike, url: string, first?: string): Promise<{ ws: WebSocket; client: UniClient }> {
  const ws = new WebSocket(url);
  const client = new UniClient(() => ws.close());
  t.after(() => ws.terminate());
  ws.on('message', (data) => {
    for (const line of data.toString().split('\n')) if (line.trim() !== '') client.got(JSON.parse(line) as Push);
  });
  ws.on('close', (code) => {
    client.closeCode = code;
    client.finished();
  });
  await waitFor(ws, 'open', { failOn: 'error' });
  if (first !== undefined) ws.send(first);
  return { ws, client };
}
