import Fastify, { type FastifyInstance } from 'fastify';
import { adminPlugin } from './api/admin.js';
import { httpApiPlugin } from './api/http.js';
import { Switchboard, type SwitchboardOptions } from './node.js';

export interface StandaloneServer {
  readonly switchboard: Switchboard;
  readonly app: FastifyInstance;
  /** The separate API app, when `http_api.port` is set. */
  readonly apiApp?: FastifyInstance;
  /** The bound port of the main listener. */
  readonly port: number;
  close(): Promise<void>;
}

function buildApp(sb: Switchboard, bodyLimit: number): FastifyInstance {
  // requestTimeout bounds slow (slowloris) request heads and bodies, upgrades included.
  const app = Fastify({ logger: false, bodyLimit, return503OnClosing: true, requestTimeout: 30_000 });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) sb.log.error({ err: err.message }, 'http error');
    else sb.metrics.badInput.labels('http_' + status).inc();
    void reply
      .code(status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(
        JSON.stringify({ error: { code: status === 500 ? 100 : 107, message: status === 500 ? 'internal server error' : err.message } }),
      );
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).header('content-type', 'application/json; charset=utf-8').send('{"error":{"code":404,"message":"not found"}}');
  });
  return app;
}

/**
 * Switchboard as a server of its own: one Fastify app with the WebSocket
 * endpoint, the server API, health and metrics on `http_server.port`
 * (and the API alone on `http_api.port` when set).
 */
export async function startServer(opts: SwitchboardOptions & { switchboard?: Switchboard } = {}): Promise<StandaloneServer> {
  const sb = opts.switchboard ?? new Switchboard(opts);
  const c = sb.config;
  const app = buildApp(sb, c.http_api.body_limit);
  const separateApi = c.http_api.port > 0;
  await app.register(httpApiPlugin(sb, { api: !separateApi }));
  if (c.admin.enabled) await app.register(adminPlugin(sb));
  // uni_sse and uni_http_stream: handed over before Fastify reads the body (the endpoint reads and bounds it).
  for (const url of sb.uniHttpPaths) {
    app.route({
      method: ['GET', 'POST', 'OPTIONS'],
      url,
      onRequest: (req, reply, _done) => {
        // never calling done ends Fastify's part: the endpoint owns the response from here
        reply.hijack();
        sb.handleUniRequest(req.raw, reply.raw);
      },
      handler: async () => undefined,
    });
  }
  let apiApp: FastifyInstance | undefined;
  if (separateApi) {
    apiApp = buildApp(sb, c.http_api.body_limit);
    await apiApp.register(httpApiPlugin(sb, { health: true }));
  }
  // The emulation transports read their own bodies and hold their responses open: hijacked before any parsing.
  app.addHook('onRequest', (req, reply, done) => {
    if (sb.handleHttp(req.raw, reply.raw)) {
      reply.hijack();
      return;
    }
    done();
  });
  await sb.start();
  sb.attach(app.server);
  await app.listen({ port: c.http_server.port, host: c.http_server.address });
  if (apiApp) await apiApp.listen({ port: c.http_api.port, host: c.http_server.address });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : c.http_server.port;
  let closed = false;
  return {
    switchboard: sb,
    app,
    apiApp,
    port,
    async close() {
      if (closed) return;
      closed = true;
      await sb.shutdown();
      await Promise.all([app.close(), apiApp?.close()]);
    },
  };
}
