/**
 * A real HTTP webhook receiver on a free port: it verifies each delivery's
 * signature (verifyWebhook, as an app would), answers with the status that
 * `respond` picks, and records every request. Emits 'request' per request
 * and 'event' per accepted (2xx) delivery whose signature checked out.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookEvent } from '../../src/webhooks/event.js';
import { WebhookHeaders, verifyWebhook } from '../../src/webhooks/sign.js';
import type { TestContextLike } from './scope.js';

export interface ReceivedRequest {
  readonly body: string;
  readonly event: WebhookEvent;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly signatureOk: boolean;
  readonly status: number;
}

export class WebhookReceiver extends EventEmitter {
  readonly requests: ReceivedRequest[] = [];
  /** Accepted deliveries (2xx), signature verified. */
  readonly events: WebhookEvent[] = [];
  /** Picks the status of the next request (default 200); may look at how many came before. */
  respond: (event: WebhookEvent, n: number) => number = () => 200;
  private server!: Server;
  url = '';

  static async start(t: TestContextLike, secret: string, path = '/hook'): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    r.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const h = (name: string): string | undefined => {
          const v = req.headers[name];
          return typeof v === 'string' ? v : undefined;
        };
        const signatureOk = verifyWebhook(secret, body, h(WebhookHeaders.signature), h(WebhookHeaders.timestamp));
        const event = JSON.parse(body) as WebhookEvent;
        const status = signatureOk ? r.respond(event, r.requests.length) : 401;
        const rec = { body, event, headers: req.headers, signatureOk, status };
        r.requests.push(rec);
        res.statusCode = status;
        res.end();
        if (status >= 200 && status < 300) r.events.push(event);
        r.emit('request', rec);
        if (status >= 200 && status < 300) r.emit('event', event);
      });
    });
    r.server.listen(0, '127.0.0.1');
    await once(r.server, 'listening');
    r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}${path}`;
    t.after(() => r.close());
    return r;
  }

  of(type: string): WebhookEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise((res) => this.server.close(res));
  }
}
