// An app backend with Switchboard embedded: Fastify serves the app's HTTP
// routes and, on the same port, the WebSocket endpoint. The app authenticates
// connections from its own session header (no JWT), answers RPC in process,
// and publishes typed events from its catalogue to rooms.
//
//   node examples/fastify-app/server.mjs        (after `npm run build`)
//   PORT=3000 node examples/fastify-app/server.mjs
import Fastify from 'fastify';
import { Switchboard, SwitchboardError, Errors } from '@switchboard/server';
import { checkEvent, rooms } from './events.mjs';

const port = Number(process.env.PORT ?? 3000);

// A stand-in for the app's own session store.
const sessions = new Map([
  ['alice-session', { user: 'alice', projects: ['p1'] }],
  ['bob-session', { user: 'bob', projects: ['p1', 'p2'] }],
]);

const sb = new Switchboard({
  config: {
    log: { level: process.env.LOG_LEVEL ?? 'warn' },
    client: {
      allowed_origins: ['*'],
      // Every connection is in the global room and its own personal room.
      server_side_subscriptions: ['global'],
      subscribe_to_user_personal_channel: { enabled: true, personal_channel_namespace: 'user' },
    },
    channel: {
      namespaces: [
        { name: 'global', history_size: 50, history_ttl: '10m', force_recovery: true },
        { name: 'user', history_size: 100, history_ttl: '1h', force_recovery: true, allow_user_limited_channels: true },
        { name: 'project', history_size: 100, history_ttl: '1h', force_recovery: true, presence: true, join_leave: true, allow_presence_for_subscriber: true },
        { name: 'agent', history_size: 20, history_ttl: '10m', force_recovery: true },
      ],
      without_namespace: { history_size: 50, history_ttl: '10m', force_recovery: true },
    },
  },
  hooks: {
    // Cookie/header auth instead of a JWT.
    onConnecting({ request }) {
      const s = sessions.get(String(request.headers['x-session'] ?? ''));
      if (!s) throw new SwitchboardError(Errors.unauthorized);
      return { user: s.user, info: { name: s.user }, channels: s.projects.map(rooms.project) };
    },
    // Agent rooms: anyone signed in may watch an agent.
    onSubscribe({ channel, user }) {
      if (channel.startsWith('agent:') && user) return {};
      return undefined; // other channels: namespace rules decide
    },
    // The app's RPC handlers, answered in process (the same methods could be
    // sent to the backend over HTTP with `rpc.proxy` instead).
    async onRpc({ method, data, user }) {
      switch (method) {
        case 'quote.get':
          return { symbol: data?.symbol ?? 'ACME', price: lastPrice, currency: 'EUR' };
        case 'analytics.query':
          return { metric: String(data?.metric ?? ''), points: metrics.get(String(data?.metric ?? '')) ?? [] };
        case 'notification.list':
          return { items: notifications.get(user) ?? [] };
        case 'admin.kick': {
          if (!admins.has(user)) throw new SwitchboardError(Errors.permissionDenied);
          await sb.disconnect({ user: String(data?.user ?? '') });
          return { kicked: String(data?.user ?? '') };
        }
        default:
          throw new SwitchboardError(Errors.methodNotFound);
      }
    },
  },
});

let lastPrice = 100;
const admins = new Set(['bob']);
/** metric → recent values; user → notifications (the app's own stores, in memory here). */
const metrics = new Map();
const notifications = new Map();

/** Publishes one catalogue event to a room. */
async function emit(room, event) {
  return sb.publish(room, checkEvent(event));
}

const app = Fastify();
app.post('/quotes/:symbol', async (req) => {
  lastPrice = Number(req.body?.price ?? lastPrice);
  return emit(rooms.global(), { type: 'quote.updated', symbol: req.params.symbol, price: lastPrice, currency: 'EUR', at: new Date().toISOString() });
});
app.post('/projects/:id', async (req) =>
  emit(rooms.project(req.params.id), { type: 'project.updated', projectId: req.params.id, name: String(req.body?.name ?? ''), updatedBy: String(req.body?.by ?? 'system') }),
);
app.post('/users/:id/notify', async (req) => {
  const event = { type: 'notification.created', id: crypto.randomUUID(), title: String(req.body?.title ?? ''), level: 'info' };
  notifications.set(req.params.id, [...(notifications.get(req.params.id) ?? []), event].slice(-50));
  return emit(rooms.user(req.params.id), event);
});
app.post('/agents/:id/status', async (req) =>
  emit(rooms.agent(req.params.id), { type: 'agent.status', agentId: req.params.id, status: req.body?.status ?? 'running', progress: req.body?.progress }),
);
app.post('/analytics/:metric', async (req) => {
  const value = Number(req.body?.value ?? 0);
  metrics.set(req.params.metric, [...(metrics.get(req.params.metric) ?? []), value].slice(-100));
  return emit(rooms.global(), { type: 'analytics.tick', metric: req.params.metric, value, at: new Date().toISOString() });
});

await sb.start();
sb.attach(app.server);
await app.listen({ port, host: '127.0.0.1' });
console.log(`example app on http://127.0.0.1:${app.server.address().port} (ws: /connection/websocket)`);

const stop = async () => {
  await sb.shutdown();
  await app.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
