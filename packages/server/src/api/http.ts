import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { stringify } from '../protocol/json.js';
import type { Switchboard } from '../node.js';
import { execute, isApiMethod, type ApiReply } from './executor.js';

export interface HttpApiOptions {
  /** Serve `/api` routes (false on a port meant for health and metrics only). */
  readonly api?: boolean;
  /** Serve `/health`, `/ready`, `/metrics`. */
  readonly health?: boolean;
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Compares the presented API key with the configured one in constant time. */
function keyMatches(presented: string | undefined, expected: Buffer): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(sha(presented), expected);
}

function apiKeyOf(req: FastifyRequest): string | undefined {
  const x = req.headers['x-api-key'];
  if (typeof x === 'string') return x;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^apikey\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  return undefined;
}

function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(stringify(body));
}

/**
 * The HTTP server API (`POST /api/<method>`, Centrifugo v6 shapes; `POST /api`
 * with newline-delimited `{"method","params"}` commands as older cent clients
 * send), health, readiness and Prometheus metrics, as a Fastify plugin.
 */
export function httpApiPlugin(sb: Switchboard, opts: HttpApiOptions = {}) {
  const apiCfg = sb.config.http_api;
  const expected = sha(apiCfg.key);
  return async function plugin(app: FastifyInstance): Promise<void> {
    if (opts.health !== false) {
      app.get('/health', async (_req, reply) => sendJson(reply, 200, {}));
      app.get('/ready', async (_req, reply) =>
        sb.ready
          ? sendJson(reply, 200, { status: 'ready' })
          : sendJson(reply, 503, { status: sb.shuttingDown ? 'shutting down' : 'not ready', engine: sb.engine.healthy() }),
      );
      app.get('/metrics', async (_req, reply) => {
        sb.collectMetrics();
        const body = await sb.metrics.registry.metrics();
        return reply.code(200).header('content-type', sb.metrics.registry.contentType).send(body);
      });
    }
    if (opts.api === false || apiCfg.disabled) return;

    await app.register(async (api) => {
      // Bodies are read as text: /api carries newline-delimited commands, and
      // a body that is not JSON must get our JSON error, not Fastify's.
      api.removeAllContentTypeParsers();
      api.addContentTypeParser('*', { parseAs: 'string', bodyLimit: apiCfg.body_limit }, (_req, body, done) => done(null, body));

      api.addHook('onRequest', async (req, reply) => {
        if (apiCfg.insecure) return;
        if (!apiCfg.key || !keyMatches(apiKeyOf(req), expected)) {
          sb.metrics.badInput.labels('api_unauthorized').inc();
          return sendJson(reply, 401, { error: { code: 101, message: 'unauthorized' } });
        }
      });

      api.post('/api/:method', async (req, reply) => {
        const method = (req.params as { method: string }).method;
        if (!isApiMethod(method)) {
          sb.metrics.badInput.labels('api_unknown_method').inc();
          return sendJson(reply, 404, { error: { code: 104, message: 'method not found' } });
        }
        const parsed = parseBody(req.body);
        if (!parsed.ok) {
          sb.metrics.badInput.labels('api_bad_body').inc();
          return sendJson(reply, 400, { error: { code: 107, message: `bad request: ${parsed.message}` } });
        }
        const r: ApiReply = await execute(sb, method, parsed.value ?? {});
        // Centrifugo's BatchResponse is `{"replies": [...]}` at the top level, not inside `result`.
        if (method === 'batch' && 'result' in r) return sendJson(reply, 200, r.result);
        return sendJson(reply, 200, r);
      });

      api.post('/api', async (req, reply) => {
        const text = typeof req.body === 'string' ? req.body : '';
        const lines = text.split('\n').filter((l) => l.trim() !== '');
        // Every line is parsed before any runs: a 400 means nothing was done.
        const cmds: Array<{ method?: unknown; params?: unknown }> = [];
        for (const line of lines) {
          const parsed = parseBody(line);
          if (!parsed.ok || !parsed.value || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
            sb.metrics.badInput.labels('api_bad_body').inc();
            return sendJson(reply, 400, { error: { code: 107, message: 'bad request: each line must be {"method": ..., "params": ...}' } });
          }
          cmds.push(parsed.value as { method?: unknown; params?: unknown });
        }
        const out: string[] = [];
        for (const cmd of cmds) {
          const r = await execute(sb, typeof cmd.method === 'string' ? cmd.method : '', cmd.params ?? {});
          out.push(stringify(r));
        }
        return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(out.join('\n'));
      });
    });
  };
}

function parseBody(body: unknown): { ok: true; value: unknown } | { ok: false; message: string } {
  if (body === undefined || body === null || body === '') return { ok: true, value: {} };
  if (typeof body !== 'string') return { ok: true, value: body };
  try {
    const v: unknown = JSON.parse(body);
    if (v !== null && (typeof v !== 'object' || Array.isArray(v))) return { ok: false, message: 'body must be a JSON object' };
    return { ok: true, value: v };
  } catch (e) {
    return { ok: false, message: `invalid JSON (${(e as Error).message})` };
  }
}
