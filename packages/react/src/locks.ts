/**
 * Collaborative field locks (Switchboard's `lock.*` RPCs): `useLock` takes,
 * renews and releases one field's lease and hands out its fencing token for
 * saves; `useLockHolders` shows who holds which field of a document, live,
 * from the server's holders map channel (`locks:<document>`).
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSwitchboard } from './context.js';
import { useMap, type MapView } from './map.js';

/** A lease as the server describes it. `token` is a decimal string: compare with BigInt. */
export interface Lease {
  key: string;
  token: string;
  holder: { user: string; client: string };
  /** Unix milliseconds. */
  expires_at: number;
}

/** A holder as the holders map channel carries it (the map key is the field). */
export interface Holder {
  user: string;
  client: string;
  token: string;
  expires_at: number;
}

export interface LockProblem {
  /** 150 lock held, 151 stale fencing token, 152 lock not held, 106 too many locks, 107 bad request, 108 not available. */
  code: number;
  message: string;
}

export type LockState = 'free' | 'acquiring' | 'held' | 'refused' | 'lost';

export interface LockView {
  state: LockState;
  lease: Lease | null;
  /**
   * `{key, token}` of the last lease this hook got, for a fenced save (`$fence` in the data, or `fence`
   * in the API). Kept when the lease is lost: the server, not the client, judges a token stale (151).
   */
  fence: { key: string; token: string } | null;
  problem: LockProblem | null;
  acquire(): Promise<Lease | null>;
  release(): Promise<void>;
}

export interface UseLockOptions {
  /** Lease length asked for (the server's default when absent; 1000..locks.max_ttl_ms). */
  ttlMs?: number;
  /** Renew while held, at half the lease (default true). */
  autoRenew?: boolean;
}

type RpcError = { code: number; message: string };
const asProblem = (e: unknown): LockProblem => {
  const r = e as Partial<RpcError>;
  return { code: typeof r?.code === 'number' ? r.code : 0, message: String(r?.message ?? e) };
};

/** One field's lock for this connection. Released on unmount; lost when the connection drops. */
export function useLock(key: string | null, opts: UseLockOptions = {}): LockView {
  const { client, state: conn } = useSwitchboard();
  const [state, setState] = useState<LockState>('free');
  const [lease, setLease] = useState<Lease | null>(null);
  const [problem, setProblem] = useState<LockProblem | null>(null);
  const [fence, setFence] = useState<LockView['fence']>(null);
  const leaseRef = useRef<Lease | null>(null);
  leaseRef.current = lease;
  const ttl = opts.ttlMs;

  const acquire = useCallback(async (): Promise<Lease | null> => {
    if (!key) return null;
    setState('acquiring');
    try {
      const r = await client.rpc('lock.acquire', ttl ? { key, ttl_ms: ttl } : { key });
      const l = r.data as Lease;
      setLease(l);
      setFence({ key: l.key, token: l.token });
      setProblem(null);
      setState('held');
      return l;
    } catch (e) {
      setProblem(asProblem(e));
      setState('refused');
      return null;
    }
  }, [client, key, ttl]);

  const release = useCallback(async (): Promise<void> => {
    const l = leaseRef.current;
    setLease(null);
    setFence(null);
    setState('free');
    if (!l) return;
    try {
      await client.rpc('lock.release', { key: l.key, token: l.token });
    } catch (e) {
      // 152: the lease had already ended (expired or taken over); nothing is held either way.
      if (asProblem(e).code !== 152) setProblem(asProblem(e));
    }
  }, [client]);

  // Renew at half the lease while held; a refused renew means the lease is gone.
  useEffect(() => {
    if (state !== 'held' || !lease || opts.autoRenew === false) return;
    const wait = Math.max(250, (lease.expires_at - Date.now()) / 2);
    const timer = setTimeout(() => {
      client.rpc('lock.renew', ttl ? { key: lease.key, token: lease.token, ttl_ms: ttl } : { key: lease.key, token: lease.token }).then(
        (r) => setLease(r.data as Lease),
        (e) => {
          setProblem(asProblem(e));
          setState('lost');
          setLease(null);
        },
      );
    }, wait);
    return () => clearTimeout(timer);
  }, [client, state, lease, ttl, opts.autoRenew]);

  // The server releases a connection's locks when it closes.
  useEffect(() => {
    if (conn !== 'connected' && leaseRef.current) {
      setLease(null);
      setState('lost');
      setProblem({ code: 152, message: 'connection lost: the lease ended with it' });
    }
  }, [conn]);

  // A new key starts free; the old key's lease is released.
  useEffect(() => {
    setState('free');
    setProblem(null);
    setFence(null);
    return () => {
      const l = leaseRef.current;
      if (l) client.rpc('lock.release', { key: l.key, token: l.token }).catch(() => {});
    };
  }, [client, key]);

  return { state, lease, fence, problem, acquire, release };
}

/** Who holds which field of `document` (field → holder), from the holders map channel. */
export function useLockHolders(document: string | null, namespace = 'locks'): MapView<Holder> {
  return useMap<Holder>(document ? `${namespace}:${document}` : null);
}
