/**
 * A real OTLP/HTTP trace receiver on a free port: POST /v1/traces with
 * OTLP JSON (what @opentelemetry/exporter-trace-otlp-http sends), decoded
 * into flat spans. Emits 'spans' per request.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContextLike } from './scope.js';

export interface ReceivedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly service: string;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}

/** OTLP/JSON ids are hex; some encoders send base64 (the protobuf JSON mapping): normalise to hex. */
function hexId(v: string | undefined): string {
  if (!v) return '';
  return /^[0-9a-f]+$/i.test(v) && (v.length === 32 || v.length === 16) ? v.toLowerCase() : Buffer.from(v, 'base64').toString('hex');
}

function attrs(list: OtlpKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue));
  }
  return out;
}

export class OtlpReceiver extends EventEmitter {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  private server!: Server;
  url = '';

  static async start(t: TestContextLike): Promise<OtlpReceiver> {
    const r = new OtlpReceiver();
    r.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        r.requests++;
        if (req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
          res.statusCode = 415;
          res.end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          resourceSpans?: Array<{
            resource?: { attributes?: OtlpKeyValue[] };
            scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
          }>;
        };
        const got: ReceivedSpan[] = [];
        for (const rs of body.resourceSpans ?? []) {
          const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              got.push({
                name: String(s.name),
                traceId: hexId(s.traceId as string),
                spanId: hexId(s.spanId as string),
                parentSpanId: hexId(s.parentSpanId as string | undefined),
                kind: Number(s.kind),
                attributes: attrs(s.attributes as OtlpKeyValue[]),
                service,
              });
            }
          }
        }
        r.spans.push(...got);
        res.setHeader('content-type', 'application/json');
        res.end('{}');
        r.emit('spans', got);
      });
    });
    r.server.listen(0, '127.0.0.1');
    await once(r.server, 'listening');
    r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/v1/traces`;
    t.after(async () => {
      r.server.closeAllConnections();
      await new Promise((res) => r.server.close(res));
    });
    return r;
  }

  named(name: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.name === name);
  }
}
