/**
 * The quoting app's backend: Fastify with Switchboard embedded in the same
 * process. Browsers sign in with a cookie session; the backend mints the
 * short connection JWT the SDK asks for (`getToken`), carrying the role; the
 * `onSubscribe` hook lets each role into its rooms only. Events come from the
 * typed catalogue (switchboard.json, types in shared/realtime-types.ts).
 */
import { readFileSync, mkdtempSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import { SignJWT } from 'jose';
import { Switchboard, SwitchboardError, Errors } from '@switchboard/server';
import type { PublicationOf } from '../shared/realtime-types.js';
import { FIELDS, Quotes, Sessions, USERS, summaryOf, type Field, type Quote, type Role, type Session, type User } from './store.js';
import { mayEnter, rooms } from './rooms.js';

export interface AppOptions {
  /** Directory with the built front end (index.html); absent: API only. */
  webDir?: string;
  /** Session lifetime (default 8 h). */
  sessionTtlMs?: number;
  /** Connection JWT lifetime, at most the session's remaining time (default 5 min). */
  tokenTtlMs?: number;
  logLevel?: string;
}

export interface QuotingApp {
  app: FastifyInstance;
  sb: Switchboard;
  quotes: Quotes;
  sessions: Sessions;
}

const COOKIE = 'qsid';
const here = new URL('.', import.meta.url);
/** The catalogue (namespaces with their schemas): dist/server → ../../switchboard.json. */
const catalogue = JSON.parse(readFileSync(new URL('../../switchboard.json', here), 'utf8')) as {
  channel: object;
  files: object;
  client: object;
};

type Reply = FastifyReply;
const fail = (reply: Reply, status: number, message: string, code = status) => reply.code(status).send({ error: { code, message } });

export async function buildApp(opts: AppOptions = {}): Promise<QuotingApp> {
  const tokenSecret = randomBytes(32).toString('base64url');
  const sessions = new Sessions(opts.sessionTtlMs ?? 8 * 3600_000);
  const quotes = new Quotes();
  const tokenTtl = opts.tokenTtlMs ?? 5 * 60_000;

  const sb = new Switchboard({
    config: {
      ...catalogue,
      log: { level: opts.logLevel ?? 'warn' },
      client: { ...catalogue.client, token: { hmac_secret_key: tokenSecret } },
      files: { ...catalogue.files, dir: mkdtempSync(join(tmpdir(), 'quoting-files-')), secret: randomBytes(32).toString('base64url') },
    },
    hooks: {
      // Rooms by role: the JWT's `info` carries the role the session had when it was minted.
      onSubscribe({ user, channel }) {
        const u = USERS[user];
        if (!u || !mayEnter(u, channel, quotes)) throw new SwitchboardError(Errors.permissionDenied);
        return {};
      },
      onDisconnect({ user, code }) {
        const u = USERS[user];
        if (u) void emit(rooms.connections(), { type: 'connection.left', user, role: u.role, code, at: now() }).catch(() => {});
      },
    },
  });

  const now = () => new Date().toISOString();
  /** Publishes one catalogue event: TypeScript checks it against the channel's schema type. */
  async function emit<C extends string>(channel: C, event: PublicationOf<C>) {
    return sb.publish(channel, event);
  }

  // Seed: two quotes for Carol's company and one more.
  quotes.create('Chen Logistics — fleet', 'carol', 'system', { premium: '12400', deductible: '2500', coverage: 'Fleet, 40 vehicles' });
  quotes.create('Chen Logistics — warehouse', 'carol', 'system', { premium: '8100', deductible: '5000', coverage: 'Fire and theft' });

  const app = Fastify({ logger: false });
  await app.register(fastifyCookie, { secret: randomBytes(32).toString('base64url') });

  /** The session of the request, or a 401 answered (with why: no session / expired). */
  function session(req: FastifyRequest, reply: Reply): Session | null {
    const raw = req.cookies[COOKIE];
    const unsigned = raw ? req.unsignCookie(raw) : null;
    const s = sessions.get(unsigned?.valid ? (unsigned.value ?? undefined) : undefined);
    if (typeof s === 'string') {
      fail(reply, 401, s === 'expired' ? 'session expired: sign in again' : 'not signed in');
      return null;
    }
    return s;
  }
  function withRole(req: FastifyRequest, reply: Reply, roles: Role[]): User | null {
    const s = session(req, reply);
    if (!s) return null;
    if (!roles.includes(s.user.role)) {
      fail(reply, 403, `forbidden for role ${s.user.role}`);
      return null;
    }
    return s.user;
  }
  function quoteFor(user: User, id: string, reply: Reply): Quote | null {
    const q = quotes.get(id);
    if (!q || !mayEnter(user, rooms.quote(id), quotes)) {
      fail(reply, 404, `no quote ${id}`);
      return null;
    }
    return q;
  }

  app.post<{ Body: { user?: string; ttlMs?: number } }>('/api/login', async (req, reply) => {
    const u = USERS[String(req.body?.user ?? '')];
    if (!u) return fail(reply, 400, 'unknown user');
    // A shorter session may be asked for (the demo's "expire soon" button and the tests); never longer.
    const ttl = Math.min(Number(req.body?.ttlMs) || Infinity, opts.sessionTtlMs ?? 8 * 3600_000);
    const id = sessions.create(u, ttl);
    reply.setCookie(COOKIE, id, { signed: true, httpOnly: true, sameSite: 'strict', path: '/' });
    return { user: u };
  });
  app.post('/api/logout', async (req, reply) => {
    const raw = req.cookies[COOKIE];
    const unsigned = raw ? req.unsignCookie(raw) : null;
    if (unsigned?.valid) sessions.delete(unsigned.value ?? undefined);
    reply.clearCookie(COOKIE, { path: '/' });
    return {};
  });
  app.get('/api/me', async (req, reply) => {
    const s = session(req, reply);
    return s ? { user: s.user, expiresAt: s.expiresAt } : reply;
  });
  /** The connection JWT for the SDK's getToken: never outlives the session. */
  app.get('/api/token', async (req, reply) => {
    const s = session(req, reply);
    if (!s) return reply;
    const exp = Math.floor(Math.min(s.expiresAt, Date.now() + tokenTtl) / 1000);
    const token = await new SignJWT({ sub: s.user.id, exp, info: { name: s.user.name, role: s.user.role } })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(tokenSecret));
    await emit(rooms.connections(), { type: 'connection.joined', user: s.user.id, role: s.user.role, at: now() });
    return { token };
  });

  app.get('/api/quotes', async (req, reply) => {
    const s = session(req, reply);
    if (!s) return reply;
    return { quotes: quotes.all().filter((q) => mayEnter(s.user, rooms.quote(q.id), quotes)) };
  });
  app.get<{ Params: { id: string } }>('/api/quotes/:id', async (req, reply) => {
    const s = session(req, reply);
    const q = s && quoteFor(s.user, req.params.id, reply);
    return q ? { quote: q } : reply;
  });
  app.post<{ Body: { customer?: string; client?: string } }>('/api/quotes', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    if (!u) return reply;
    const customer = String(req.body?.customer ?? '').trim();
    if (!customer) return fail(reply, 400, 'customer is required');
    const q = quotes.create(customer, String(req.body?.client ?? 'carol'), u.id);
    await emit(rooms.quoteList(), { type: 'quote.created', quote: summaryOf(q) });
    return { quote: q };
  });
  /**
   * Saves one field. The agent sends the fencing token of its lease on
   * `quote:<id>/<field>`; a save with a token older than the field's newest
   * lease is refused (the agent's lease ended and someone else took it).
   */
  app.post<{ Params: { id: string }; Body: { field?: string; value?: string; token?: string } }>(
    '/api/quotes/:id/fields',
    async (req, reply) => {
      const u = withRole(req, reply, ['agent', 'admin']);
      const q = u && quoteFor(u, req.params.id, reply);
      if (!u || !q) return reply;
      const field = String(req.body?.field ?? '') as Field;
      if (!FIELDS.includes(field)) return fail(reply, 400, `unknown field ${field}`);
      const value = String(req.body?.value ?? '');
      const token = req.body?.token === undefined ? undefined : String(req.body.token);
      const event: PublicationOf<'quote:x'> = {
        type: 'quote.field_saved',
        quoteId: q.id,
        field,
        value,
        by: u.id,
        version: q.version + 1,
        at: now(),
      };
      if (token !== undefined) Object.assign(event, { token });
      try {
        await saveFenced(rooms.quote(q.id), event, token === undefined ? undefined : { key: `quote:${q.id}/${field}`, token });
      } catch (e) {
        const err = (e as { error?: { code: number; message: string } }).error;
        if (err) return fail(reply, 409, err.message, err.code);
        throw e;
      }
      q.fields[field] = value;
      q.version += 1;
      q.updatedBy = u.id;
      q.updatedAt = event.at;
      await emit(rooms.quoteList(), { type: 'quote.changed', quote: summaryOf(q) });
      return { quote: q };
    },
  );
  /** The publish of a save; with a fence when the node has field locks (see the README). */
  async function saveFenced(channel: string, event: object, fence: { key: string; token: string } | undefined) {
    return sb.publish(channel, event, fence ? ({ fence } as object) : {});
  }
  app.post<{ Params: { id: string }; Body: { decision?: string } }>('/api/quotes/:id/decision', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    const q = u && quoteFor(u, req.params.id, reply);
    if (!u || !q) return reply;
    const decision = req.body?.decision === 'declined' ? 'declined' : req.body?.decision === 'referred' ? 'referred' : 'approved';
    q.status = decision === 'approved' ? 'bound' : decision === 'declined' ? 'declined' : 'review';
    q.version += 1;
    await emit(rooms.policy(q.id), { type: 'policy.decided', quoteId: q.id, decision, premium: q.fields.premium, by: u.id, at: now() });
    await emit(rooms.quoteList(), { type: 'quote.changed', quote: summaryOf(q) });
    await emit(rooms.notifications(q.client), {
      type: 'notification.created',
      id: randomUUID(),
      title: `Quote ${q.id}: ${decision}`,
      priority: 'normal',
      at: now(),
    });
    return { quote: q };
  });
  /** A tus upload token for the quote's attachments room (agents only). */
  app.post<{ Params: { id: string } }>('/api/quotes/:id/upload-token', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    const q = u && quoteFor(u, req.params.id, reply);
    if (!u || !q) return reply;
    const { token } = await sb.files!.uploadToken({ user: u.id, channel: rooms.attachments(q.id), ttl: 600 });
    return { token, endpoint: '/files/' };
  });
  /** The files attached to a quote (from the attachments room's history). */
  app.get<{ Params: { id: string } }>('/api/quotes/:id/files', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    const q = u && quoteFor(u, req.params.id, reply);
    if (!u || !q) return reply;
    const { publications } = await sb.history(rooms.attachments(q.id));
    return { files: publications.map((p) => (p.data as PublicationOf<'attachments:x'>).file) };
  });
  /** A signed download URL for a file of a quote the user may see. */
  app.get<{ Params: { id: string; file: string } }>('/api/quotes/:id/files/:file', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    const q = u && quoteFor(u, req.params.id, reply);
    if (!u || !q) return reply;
    const { publications } = await sb.history(rooms.attachments(q.id));
    if (!publications.some((p) => (p.data as { file?: { id?: string } }).file?.id === req.params.file))
      return fail(reply, 404, 'no such file on this quote');
    return sb.files!.signedUrl(req.params.file, 300);
  });
  /** Notifies a user; `urgent` goes to the high-priority lane. */
  app.post<{ Body: { to?: string; title?: string; priority?: string } }>('/api/notify', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    if (!u) return reply;
    const to = String(req.body?.to ?? '');
    if (!USERS[to]) return fail(reply, 400, 'unknown user');
    const priority = req.body?.priority === 'urgent' ? 'urgent' : 'normal';
    await emit(rooms.notifications(to), {
      type: 'notification.created',
      id: randomUUID(),
      title: String(req.body?.title ?? '').slice(0, 200),
      priority,
      at: now(),
    });
    return {};
  });
  /**
   * The bulk analytics stream and an urgent notification in one go: `count`
   * ticks of ~`size` bytes to analytics:live (low priority), then one urgent
   * notification to `to` (high priority). A connection that is behind gets
   * the urgent one ahead of the queued ticks; the notification says how many
   * ticks were published before it (`bulkSeen` is filled in by the browser).
   */
  app.post<{ Body: { to?: string; count?: number; size?: number } }>('/api/burst', async (req, reply) => {
    const u = withRole(req, reply, ['agent', 'admin']);
    if (!u) return reply;
    const to = String(req.body?.to ?? u.id);
    const count = Math.min(Math.max(1, Number(req.body?.count) || 200), 2000);
    const pad = 'x'.repeat(Math.min(Math.max(0, Number(req.body?.size) || 2000), 16000));
    const sends: Promise<unknown>[] = [];
    for (let seq = 1; seq <= count; seq++)
      sends.push(
        emit(rooms.analytics(), { type: 'analytics.tick', metric: 'quotes.per_minute', value: seq % 17, seq, at: now(), labels: { pad } }),
      );
    sends.push(
      emit(rooms.notifications(to), {
        type: 'notification.created',
        id: randomUUID(),
        title: `Urgent: review quote queue (after ${count} bulk ticks)`,
        priority: 'urgent',
        at: now(),
      }),
    );
    await Promise.all(sends);
    return { published: count + 1 };
  });

  if (opts.webDir) {
    await app.register(fastifyStatic, { root: opts.webDir, index: 'index.html' });
    app.setNotFoundHandler((req, reply) => (req.url.startsWith('/api/') ? fail(reply, 404, 'not found') : reply.sendFile('index.html')));
  }

  await sb.start();
  sb.attach(app.server);
  return { app, sb, quotes, sessions };
}
