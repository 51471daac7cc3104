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
    onRpc({ method, data }) {
      if (method === 'quote.get') return { symbol: data?.symbol ?? 'ACME', price: lastPrice, currency: 'EUR' };
      throw new SwitchboardError(Errors.methodNotFound);
    },
  },
});

let lastPrice = 100;

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
app.post('/users/:id/notify', async (req) =>
  emit(rooms.user(req.params.id), { type: 'notification.created', id: crypto.randomUUID(), title: String(req.body?.title ?? ''), level: 'info' }),
);
app.post('/agents/:id/status', async (req) =>
  emit(rooms.agent(req.params.id), { type: 'agent.status', agentId: req.params.id, status: req.body?.status ?? 'running', progress: req.body?.progress }),
);
app.post('/analytics/:metric', async (req) =>
  emit(rooms.global(), { type: 'analytics.tick', metric: req.params.metric, value: Number(req.body?.value ?? 0), at: new Date().toISOString() }),
);

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
