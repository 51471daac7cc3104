import { Type } from '@sinclair/typebox';
import type { Switchboard } from '../node.js';

/**
 * Server API methods of field locks and user status (docs/LOCKS.md,
 * docs/USER-STATUS.md): their params and results, spread into the API's
 * schemas (schemas.ts), and their handlers, spread into the executor's.
 */

const Key = Type.String({ minLength: 1, description: 'Lock key `<document>/<field>`, e.g. `quote:42/premium`.' });
const Token = Type.String({ pattern: '^[0-9]{1,20}$', description: 'Fencing token: a decimal integer as a string.' });
const TtlMs = Type.Optional(
  Type.Integer({ minimum: 1, description: 'Lease length in ms (default locks.default_ttl_ms; locks.min_ttl_ms to locks.max_ttl_ms).' }),
);
const Users = Type.Array(Type.String(), { minItems: 1, maxItems: 1000, description: 'User IDs.' });
const Ms = (description: string) => Type.Integer({ minimum: 0, description });

export const LockParamsSchemas = {
  lock_acquire: Type.Object(
    {
      key: Key,
      ttl_ms: TtlMs,
      user: Type.Optional(Type.String({ description: 'User the backend holds the lock for (shown to clients; default "").' })),
      client: Type.Optional(Type.String({ description: 'Holder client ID shown to clients (default "api").' })),
    },
    { description: 'Switchboard: take a field lock for the backend; error 150 when another client holds it.' },
  ),
  lock_renew: Type.Object(
    { key: Key, token: Token, ttl_ms: TtlMs },
    { description: 'Switchboard: extend a live lease (error 152 when it is not live with this token).' },
  ),
  lock_release: Type.Object(
    { key: Key, token: Token },
    { description: 'Switchboard: end a live lease (error 152 when it is not live with this token).' },
  ),
  lock_get: Type.Object(
    { document: Type.String({ minLength: 1, description: 'Document, e.g. `quote:42`.' }) },
    { description: "Switchboard: the live leases of a document's fields." },
  ),
  update_user_status: Type.Object({ users: Users }, { description: 'Mark users active now (Centrifugo PRO user status).' }),
  get_user_status: Type.Object({ users: Users }, { description: 'Last activity and online time of users (Centrifugo PRO user status).' }),
  delete_user_status: Type.Object({ users: Users }, { description: 'Forget the status of users (Centrifugo PRO user status).' }),
};

const Lease = Type.Object({
  key: Type.String(),
  token: Type.String({ description: 'Fencing token (decimal string), strictly increasing per key.' }),
  holder: Type.Object({ user: Type.String(), client: Type.String() }),
  expires_at: Ms('Unix ms when the lease ends unless renewed.'),
  acquired_at: Ms('Unix ms when this token was issued.'),
});
const Empty = Type.Object({});

export const LockResultSchemas = {
  lock_acquire: Lease,
  lock_renew: Lease,
  lock_release: Type.Object({ released_at: Ms('Unix ms when the lease ended.') }),
  lock_get: Type.Object({
    holders: Type.Array(
      Type.Object({
        key: Type.String(),
        field: Type.String(),
        user: Type.String(),
        client: Type.String(),
        token: Type.String(),
        expires_at: Ms('Unix ms.'),
      }),
    ),
  }),
  update_user_status: Empty,
  get_user_status: Type.Object({
    statuses: Type.Array(
      Type.Object({
        user: Type.String(),
        active: Type.Optional(Ms('Last activity, unix seconds.')),
        online: Type.Optional(Ms('Last time seen connected, unix seconds (now while connected).')),
        connected: Type.Boolean({ description: 'Switchboard: a connection of the user is open on some node now.' }),
      }),
      { description: 'One per user, in the order asked.' },
    ),
  }),
  delete_user_status: Empty,
};

type P<K extends keyof typeof LockParamsSchemas> = import('@sinclair/typebox').Static<(typeof LockParamsSchemas)[K]>;

export const LOCK_HANDLERS = {
  async lock_acquire(sb: Switchboard, p: P<'lock_acquire'>) {
    return sb.lockAcquire(p.key, { ttlMs: p.ttl_ms, user: p.user, client: p.client });
  },
  async lock_renew(sb: Switchboard, p: P<'lock_renew'>) {
    return sb.lockRenew(p.key, p.token, { ttlMs: p.ttl_ms });
  },
  async lock_release(sb: Switchboard, p: P<'lock_release'>) {
    return sb.lockRelease(p.key, p.token);
  },
  async lock_get(sb: Switchboard, p: P<'lock_get'>) {
    return { holders: await sb.lockGet(p.document) };
  },
  async update_user_status(sb: Switchboard, p: P<'update_user_status'>) {
    await sb.updateUserStatus(p.users);
    return {};
  },
  async get_user_status(sb: Switchboard, p: P<'get_user_status'>) {
    return { statuses: await sb.getUserStatus(p.users) };
  },
  async delete_user_status(sb: Switchboard, p: P<'delete_user_status'>) {
    await sb.deleteUserStatus(p.users);
    return {};
  },
};
