import type { Config } from '../config/load.js';
import { MemoryLocks, MemoryUserStatus } from '../engine/memory/locks.js';
import type { Engine } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ChannelDirectory, ConnectionIndex } from '../session/context.js';
import { holdersMap, type MapWriter } from './holders-map.js';
import { builtinRpc, type BuiltinRpc } from './rpc.js';
import { LockService } from './service.js';
import { UserStatusService } from './user-status.js';

export { LockService, type HolderObserver, type HolderValue, type LeaseReply, type HolderEntry } from './service.js';
export { UserStatusService, type UserStatus } from './user-status.js';

/** A node's locks and user status, over the engine's roles (this process's own when the engine has none). */
export interface Collab {
  readonly locks: LockService;
  readonly userStatus: UserStatusService;
  readonly rpc: BuiltinRpc | undefined;
  /** Wraps the node's connection index: connect, disconnect and commands feed user status and end a connection's leases. */
  connections(inner: ConnectionIndex): ConnectionIndex;
  /**
   * Starts the expiry sweep and the activity refresh; with `locks.enabled` and
   * a map namespace named `locks.namespace`, holder changes go into its channels.
   */
  start(maps: MapWriter, channels: ChannelDirectory): void;
  stop(): void;
}

export function createCollab(c: Config, engine: Engine, metrics: Metrics, log: Logger): Collab {
  const locks = new LockService(c.locks, engine.locks ?? new MemoryLocks(), metrics, log);
  const userStatus = new UserStatusService(c.user_status, engine.userStatus ?? new MemoryUserStatus(), engine.presence, metrics, log);
  const on = c.locks.enabled || c.user_status.enabled;
  /** Sessions that completed connect (remove is called for every session, connected or not). */
  const added = new WeakSet<object>();
  return {
    locks,
    userStatus,
    rpc: on ? builtinRpc(locks, userStatus, c.client.insecure) : undefined,
    connections: (inner) =>
      on
        ? {
            get count() {
              return inner.count;
            },
            ofUser: (user) => inner.ofUser(user),
            add: (s) => {
              inner.add(s);
              added.add(s);
              userStatus.connected(s.user, s.id);
            },
            remove: (s) => {
              inner.remove(s);
              locks.connectionClosed(s.id);
              if (!added.delete(s)) return;
              userStatus.disconnected(s.user, s.id);
            },
            closed: (s) => inner.closed(s),
            active: (s) => userStatus.activity(s.user),
          }
        : inner,
    start(maps, channels) {
      locks.start();
      userStatus.start();
      if (c.locks.enabled && holdersAreMap(channels, c.locks.namespace)) {
        locks.observe(holdersMap(maps, (ch, field) => locks.holderOf(ch, field), log));
      } else if (c.locks.enabled) {
        log.warn(
          { namespace: c.locks.namespace },
          'locks.namespace is not a map namespace: lock holders are not published (lock.get / lock_get still answer)',
        );
      }
    },
    stop() {
      locks.stop();
      userStatus.stop();
    },
  };
}

/** True when channels of `namespace` are map channels (docs/MAPS.md). */
function holdersAreMap(channels: ChannelDirectory, namespace: string): boolean {
  try {
    return channels.resolve(`${namespace}:x`).options.subscription_type === 'map';
  } catch {
    return false;
  }
}
