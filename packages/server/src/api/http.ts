import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { stringify } from '../protocol/json.js';
import type { Switchboard } from '../node.js';
import { execute, executeChecked, type ApiReply } from './executor.js';
import { declareApiRoutes, parseBody } from './routes.js';
import { SpanKind } from '@opentelemetry/api';

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

/** An API reply's error, as a span's status message. */
function apiFailure(r: ApiReply): string | undefined {
  return 'error' in r ? `${r.error.code} ${r.error.message}` : undefined;
}

function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(stringify(body));
}

/**
 * The HTTP server API (`POST /api/<method>`, Centrifugo v6 shapes; `POST /api`
 * with newline-delimited `{"method","params"}` commands as older cent clients
 * send), health, readiness and Prometheus metrics, as a Fastify plugin.
 * With `swagger.enabled`, `GET /api/openapi.json` serves the API's OpenAPI document.
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

    // Like Centrifugo's swagger: off by default, and without the API key (it
    // describes the public wire shapes and holds no secret).
    if (sb.config.swagger.enabled) {
      app.get('/api/openapi.json', async (_req, reply) => {
        // Loaded on first use: the generator (and @fastify/swagger) costs nothing until the document is asked for.
        const { openApiJson } = await import('./openapi.js');
        return reply
          .code(200)
          .header('content-type', 'application/json; charset=utf-8')
          .send(await openApiJson());
      });
    }

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

      declareApiRoutes(api, {
        badBody(reply, message) {
          sb.metrics.badInput.labels('api_bad_body').inc();
          return sendJson(reply, 400, { error: { code: 107, message: `bad request: ${message}` } });
        },

        async unknownMethod(_req, reply) {
          sb.metrics.badInput.labels('api_unknown_method').inc();
          return sendJson(reply, 404, { error: { code: 104, message: 'method not found' } });
        },

        async command(method, req, reply) {
          const run = (): Promise<ApiReply> => executeChecked(sb, method, req.body, req.validationError?.validation);
          const t = sb.tracing;
          const r: ApiReply = t?.api
            ? await t.run(`api ${method}`, SpanKind.SERVER, { 'rpc.method': method }, run, t.fromHeaders(req.headers), apiFailure)
            : await run();
          // Centrifugo's BatchResponse is `{"replies": [...]}` at the top level, not inside `result`.
          if (method === 'batch' && 'result' in r) return sendJson(reply, 200, r.result);
          return sendJson(reply, 200, r);
        },

        async pipeline(req, reply) {
          const text = typeof req.body === 'string' ? req.body : '';
          const lines = text.split('\n').filter((l) => l.trim() !== '');
          // Every line is parsed before any runs: a 400 means nothing was done.
          const cmds: Array<{ method?: unknown; params?: unknown }> = [];
          for (const line of lines) {
            const parsed = parseBody(line);
            if (!parsed.ok || !parsed.value || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
              sb.metrics.badInput.labels('api_bad_body').inc();
              return sendJson(reply, 400, {
                error: { code: 107, message: 'bad request: each line must be {"method": ..., "params": ...}' },
              });
            }
            cmds.push(parsed.value as { method?: unknown; params?: unknown });
          }
          const out: string[] = [];
          for (const cmd of cmds) {
            const r = await execute(sb, typeof cmd.method === 'string' ? cmd.method : '', cmd.params ?? {});
            out.push(stringify(r));
          }
          return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(out.join('\n'));
        },
      });
    });
  };
}
