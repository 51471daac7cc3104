import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Switchboard } from '../node.js';
import { stringify } from '../protocol/json.js';
import { AdminAuth, LoginLimiter, adminTokenOf } from './admin-auth.js';
import { MetricsSeries } from './admin-series.js';
import { execute, isApiMethod } from './executor.js';
import { API_METHODS, ErrorReplySchema } from './schemas.js';

export const AdminLoginSchema = Type.Object(
  { password: Type.String({ description: 'admin.password' }) },
  { description: 'Log in to the admin UI.' },
);
export const AdminTokenSchema = Type.Object({ token: Type.String({ description: 'Send as `Authorization: token <token>`.' }) });
export const AdminSeriesSchema = Type.Object({
  interval_ms: Type.Integer({ description: 'Time between samples.' }),
  samples: Type.Array(
    Type.Object({
      t: Type.Integer({ description: 'Unix ms.' }),
      nodes: Type.Integer(),
      clients: Type.Integer({ description: 'Connections on every node.' }),
      users: Type.Integer(),
      subs: Type.Integer(),
      publications_per_s: Type.Number({ description: "This node's publications per second." }),
      deliveries_per_s: Type.Number({ description: "This node's deliveries to subscribers per second." }),
      api_commands_per_s: Type.Number({ description: "This node's server API commands per second." }),
    }),
  ),
});
const MethodParam = Type.Object({ method: Type.String({ description: `A server API method: ${API_METHODS.join(', ')}.` }) });

/** Where the dashboard's build lives: the @switchboard/dashboard workspace's dist/ (null when it is not built). */
export function dashboardDir(): string | null {
  const candidates: string[] = [];
  try {
    const pkg = createRequire(import.meta.url).resolve('@switchboard/dashboard/package.json');
    candidates.push(join(dirname(pkg), 'dist'));
  } catch {
    // not installed as a package: try the monorepo layout
  }
  // dist/src/api/admin.js → packages/dashboard/dist
  candidates.push(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'dashboard', 'dist'));
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(stringify(body));
}

/**
 * The admin web UI (`admin.enabled`): the dashboard's static build at
 * `/admin/`, the login (`POST /admin/auth`: password → token signed with
 * `admin.secret`; wrong passwords are counted and rate limited per address
 * with 429), and the API the dashboard calls with the token: every server
 * API method at `POST /admin/api/<method>` and the sampled metrics at
 * `GET /admin/api/series`.
 */
export function adminPlugin(sb: Switchboard, opts: { limiter?: LoginLimiter; dashboardDir?: string | null } = {}) {
  const cfg = sb.config.admin;
  if (!cfg.insecure && (!cfg.password || !cfg.secret))
    throw new Error('admin.enabled needs admin.password and admin.secret (or admin.insecure, for development only)');
  const auth = cfg.insecure ? undefined : new AdminAuth(cfg.password, cfg.secret);
  const limiter = opts.limiter ?? new LoginLimiter();
  const series = new MetricsSeries(sb);
  const dir = opts.dashboardDir !== undefined ? opts.dashboardDir : dashboardDir();

  return async function plugin(app: FastifyInstance): Promise<void> {
    if (cfg.insecure)
      sb.log.warn(
        'admin.insecure is on: the admin UI and its API (publish, disconnect, ...) answer anyone who reaches this port without a login. Development only!',
      );
    series.start();
    app.addHook('onClose', async () => series.stop());

    app.get('/admin', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/admin/'));
    if (dir) {
      // Loaded only here: a node without the admin UI never pays for it.
      const { default: fastifyStatic } = await import('@fastify/static');
      await app.register(fastifyStatic, { root: dir, prefix: '/admin/', decorateReply: false, cacheControl: false });
    } else {
      app.get('/admin/', async (_req, reply) =>
        sendJson(reply, 503, {
          error: { code: 108, message: 'the dashboard is not built: run `npm run build -w @switchboard/dashboard`' },
        }),
      );
    }

    app.post(
      '/admin/auth',
      { schema: { body: AdminLoginSchema, response: { 200: AdminTokenSchema, 401: ErrorReplySchema, 429: ErrorReplySchema } } },
      async (req, reply) => {
        if (!auth) return sendJson(reply, 200, { token: '' });
        const wait = limiter.retryAfter(req.ip);
        if (wait > 0) {
          sb.metrics.badInput.labels('admin_login_rate_limited').inc();
          reply.header('retry-after', String(Math.ceil(wait / 1000)));
          return sendJson(reply, 429, { error: { code: 111, message: 'too many login attempts, try again later' } });
        }
        if (!auth.passwordMatches((req.body as { password: string }).password)) {
          limiter.failed(req.ip);
          sb.metrics.badInput.labels('admin_wrong_password').inc();
          sb.log.warn({ ip: req.ip }, 'admin login: wrong password');
          return sendJson(reply, 401, { error: { code: 101, message: 'wrong password' } });
        }
        limiter.succeeded(req.ip);
        return sendJson(reply, 200, { token: await auth.issue() });
      },
    );

    await app.register(async (api) => {
      api.addHook('onRequest', async (req, reply) => {
        if (!auth || (await auth.verify(adminTokenOf(req.headers.authorization)))) return;
        sb.metrics.badInput.labels('admin_unauthorized').inc();
        return sendJson(reply, 401, { error: { code: 101, message: 'unauthorized' } });
      });
      api.get('/admin/api/series', { schema: { response: { 200: AdminSeriesSchema } } }, async (_req, reply) =>
        sendJson(reply, 200, { interval_ms: series.intervalMs, samples: series.list() }),
      );
      api.post('/admin/api/:method', { schema: { params: MethodParam } }, async (req, reply) => {
        const { method } = req.params as { method: string };
        if (!isApiMethod(method)) {
          sb.metrics.badInput.labels('api_unknown_method').inc();
          return sendJson(reply, 404, { error: { code: 104, message: 'method not found' } });
        }
        return sendJson(reply, 200, await execute(sb, method, req.body ?? {}));
      });
    });
  };
}
