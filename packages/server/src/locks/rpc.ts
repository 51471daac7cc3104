import { Errors, ReplyError } from '../protocol/codes.js';
import type { LockService } from './service.js';
import type { UserStatusService } from './user-status.js';

/** The connection calling a built-in RPC method. */
export interface RpcCaller {
  readonly id: string;
  readonly user: string;
  /** Subscribed to the channel now. */
  subscribedTo(channel: string): boolean;
}

/** Answers a built-in method; undefined when `method` is not one (the onRpc hook / RPC proxy gets it). */
export type BuiltinRpc = (caller: RpcCaller, method: string, data: unknown) => Promise<unknown> | undefined;

type Params = Record<string, unknown>;

/**
 * The RPC methods the server answers itself (the standard SDK's
 * `centrifuge.rpc(method, data)`): `lock.acquire`, `lock.renew`,
 * `lock.release`, `lock.get` (when locks are on), `user_status.get` and
 * `update_user_status` (when user status is on). A lock needs a user
 * (unless client.insecure) and a subscription to the document's channel:
 * the app's subscribe rules (tokens, hooks, proxy) decide who may lock.
 */
export function builtinRpc(locks: LockService, status: UserStatusService, insecure: boolean): BuiltinRpc {
  const params = (raw: unknown): Params => {
    let data = raw;
    // Protobuf clients send the RPC data as bytes (JSON text).
    if (data instanceof Uint8Array) {
      try {
        data = data.length === 0 ? undefined : (JSON.parse(Buffer.from(data).toString('utf8')) as unknown);
      } catch {
        throw new ReplyError({ code: Errors.badRequest.code, message: 'bad request: data must be JSON' });
      }
    }
    if (data === undefined || data === null) return {};
    if (typeof data !== 'object' || Array.isArray(data))
      throw new ReplyError({ code: Errors.badRequest.code, message: 'bad request: data must be an object' });
    return data as Params;
  };
  const mayLock = (c: RpcCaller, document: string): void => {
    if (insecure) return;
    if (c.user === '' || !c.subscribedTo(document)) throw new ReplyError(Errors.permissionDenied);
  };
  const lockMethods: Record<string, (c: RpcCaller, p: Params) => Promise<unknown>> = {
    'lock.acquire': async (c, p) => {
      mayLock(c, locks.checkKey(p.key).document);
      return locks.acquire(p.key, { user: c.user, client: c.id }, p.ttl_ms, true);
    },
    'lock.renew': async (c, p) => {
      mayLock(c, locks.checkKey(p.key).document);
      return locks.renew(p.key, p.token, c.id, p.ttl_ms);
    },
    'lock.release': async (c, p) => {
      locks.checkKey(p.key);
      return locks.release(p.key, p.token, c.id);
    },
    'lock.get': async (c, p) => {
      mayLock(c, locks.checkDocument(p.document));
      return { holders: await locks.holders(p.document) };
    },
  };
  const statusMethods: Record<string, (c: RpcCaller, p: Params) => Promise<unknown>> = {
    'user_status.get': async (c, p) => {
      if (c.user === '' && !insecure) throw new ReplyError(Errors.permissionDenied);
      return { statuses: await status.get(p.users) };
    },
    update_user_status: async (c) => {
      if (c.user === '') throw new ReplyError(Errors.permissionDenied);
      await status.update([c.user]);
      return {};
    },
  };
  const table = { ...(locks.enabled ? lockMethods : {}), ...(status.enabled ? statusMethods : {}) };
  return (caller, method, data) => {
    if (!Object.hasOwn(table, method)) return undefined;
    const fn = table[method]!;
    return (async () => fn(caller, params(data)))();
  };
}
