import type { IncomingHttpHeaders } from 'node:http';
import type { Config, NamespaceConfig } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DisconnectError, Errors, ReplyError } from '../protocol/codes.js';
import type { Hooks, Json } from '../session/hooks.js';
import type { ChannelRules } from './channels.js';

export interface ProxyEndpointConfig {
  readonly endpoint: string;
  readonly timeout: number;
  readonly http_headers: readonly string[];
  readonly max_concurrency: number;
}

const BREAKER_FAILURES = 5;
const BREAKER_COOLDOWN_MS = 5000;

/**
 * One backend endpoint (Centrifugo proxy protocol over HTTP/JSON): bounded
 * concurrency, a timeout per call, and a circuit breaker that fails fast
 * while the backend is down and lets one probe through after a cooldown.
 * Every failure reaches the client as a protocol error, never as a hang.
 */
export class ProxyCaller {
  private active = 0;
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  private readonly headers: string[];

  constructor(
    readonly name: string,
    private readonly cfg: ProxyEndpointConfig,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.headers = cfg.http_headers.map((h) => h.toLowerCase());
  }

  async call(body: Record<string, unknown>, requestHeaders?: IncomingHttpHeaders): Promise<Record<string, unknown>> {
    const now = Date.now();
    if (now < this.openUntil || (this.failures >= BREAKER_FAILURES && this.probing)) {
      this.metrics.limits.labels(`proxy_${this.name}_circuit_open`).inc();
      throw new ReplyError(Errors.internal);
    }
    if (this.active >= this.cfg.max_concurrency) {
      this.metrics.limits.labels(`proxy_${this.name}_concurrency`).inc();
      throw new ReplyError(Errors.tooManyRequests);
    }
    const probe = this.failures >= BREAKER_FAILURES;
    if (probe) this.probing = true;
    this.active++;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (requestHeaders) {
      for (const h of this.headers) {
        const v = requestHeaders[h];
        if (typeof v === 'string') headers[h] = v;
        else if (Array.isArray(v)) headers[h] = v.join(', ');
      }
    }
    let res: Response;
    let parsed: unknown;
    try {
      res = await fetch(this.cfg.endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.cfg.timeout > 0 ? this.cfg.timeout : 1000),
      });
      if (res.status !== 200) throw new Error(`backend answered HTTP ${res.status}`);
      parsed = await res.json();
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('backend answer is not a JSON object');
    } catch (e) {
      this.onFailure(e);
      throw new ReplyError(Errors.internal);
    } finally {
      this.active--;
      if (probe) this.probing = false;
    }
    this.failures = 0;
    this.openUntil = 0;
    const reply = parsed as {
      result?: unknown;
      error?: { code?: unknown; message?: unknown; temporary?: unknown };
      disconnect?: { code?: unknown; reason?: unknown };
    };
    if (reply.disconnect && typeof reply.disconnect.code === 'number') {
      throw new DisconnectError({ code: reply.disconnect.code, reason: String(reply.disconnect.reason ?? '') });
    }
    if (reply.error && typeof reply.error.code === 'number') {
      throw new ReplyError({
        code: reply.error.code,
        message: String(reply.error.message ?? ''),
        temporary: reply.error.temporary === true || undefined,
      });
    }
    const result = reply.result;
    return result && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, unknown>) : {};
  }

  private onFailure(e: unknown): void {
    this.failures++;
    this.metrics.badInput.labels(`proxy_${this.name}_failure`).inc();
    if (this.failures >= BREAKER_FAILURES) {
      this.openUntil = Date.now() + BREAKER_COOLDOWN_MS;
      if (this.failures === BREAKER_FAILURES)
        this.log.warn({ proxy: this.name, endpoint: this.cfg.endpoint }, 'proxy circuit open: backend failing');
    }
    this.log.debug({ proxy: this.name, err: e instanceof Error ? e.message : String(e) }, 'proxy call failed');
  }
}

/** A JSON field of a backend answer, or its base64 twin (`info`/`b64info`, `data`/`b64data`). */
function jsonField(r: Record<string, unknown>, key: 'info' | 'data'): Json | undefined {
  if (r[key] !== undefined) return r[key] as Json;
  const b64 = r['b64' + key];
  if (typeof b64 !== 'string') return undefined;
  try {
    return JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as Json;
  } catch {
    throw new ReplyError(Errors.internal);
  }
}
const infoOf = (r: Record<string, unknown>): Json | undefined => jsonField(r, 'info');
const dataOf = (r: Record<string, unknown>): Json | undefined => jsonField(r, 'data');

const base = { transport: 'websocket', protocol: 'json', encoding: 'json' } as const;

/**
 * Hooks that ask the app backend over HTTP where the config enables a
 * proxy, and fall through to the in-process hooks elsewhere.
 */
export function proxyHooks(config: Config, inner: Hooks, channels: ChannelRules, log: Logger, metrics: Metrics): Hooks {
  const mk = (name: string, cfg: ProxyEndpointConfig & { enabled: boolean }): ProxyCaller | undefined =>
    cfg.endpoint ? new ProxyCaller(name, cfg, log, metrics) : undefined;
  // Connect and refresh proxies need `enabled: true` as in Centrifugo v6; the
  // channel and RPC proxies are switched on per namespace.
  const connect = config.client.proxy.connect.enabled ? mk('connect', config.client.proxy.connect) : undefined;
  const refresh = config.client.proxy.refresh.enabled ? mk('refresh', config.client.proxy.refresh) : undefined;
  const subscribe = mk('subscribe', config.channel.proxy.subscribe);
  const publish = mk('publish', config.channel.proxy.publish);
  const subRefresh = mk('sub_refresh', config.channel.proxy.sub_refresh);
  const rpc = mk('rpc', config.rpc.proxy);
  const rpcNamespaces = new Map(config.rpc.namespaces.map((n) => [n.name, n.proxy_enabled]));
  const nsOf = (channel: string): NamespaceConfig | undefined => {
    try {
      return channels.resolve(channel).options;
    } catch {
      return undefined;
    }
  };
  const rpcProxied = (method: string): boolean => {
    const b = method.indexOf(config.rpc.namespace_boundary);
    if (b > 0) return rpcNamespaces.get(method.slice(0, b)) ?? false;
    return config.rpc.without_namespace.proxy_enabled;
  };

  const hooks: Hooks = {
    ...inner,
    async onConnecting(ctx) {
      // A client with a token authenticates with it; the proxy handles the rest.
      if (connect && !ctx.token) {
        const r = await connect.call(
          { ...base, client: ctx.client, name: ctx.name, version: ctx.version, data: ctx.data },
          ctx.request.headers,
        );
        if (typeof r.user !== 'string') throw new ReplyError(Errors.unauthorized);
        return {
          user: r.user,
          info: infoOf(r),
          data: dataOf(r),
          channels: Array.isArray(r.channels) ? r.channels.filter((c): c is string => typeof c === 'string') : undefined,
          expireAt: typeof r.expire_at === 'number' ? r.expire_at : undefined,
        };
      }
      return inner.onConnecting?.(ctx);
    },
    async onRefresh(ctx) {
      if (refresh) {
        const r = await refresh.call({ ...base, client: ctx.client, user: ctx.user }, ctx.headers);
        return { expired: r.expired === true, expireAt: typeof r.expire_at === 'number' ? r.expire_at : undefined, info: infoOf(r) };
      }
      return inner.onRefresh?.(ctx);
    },
    async onSubscribe(ctx) {
      if (subscribe && nsOf(ctx.channel)?.subscribe_proxy_enabled) {
        const r = await subscribe.call({ ...base, client: ctx.client, user: ctx.user, channel: ctx.channel, data: ctx.data }, ctx.headers);
        return { info: infoOf(r), data: dataOf(r), expireAt: typeof r.expire_at === 'number' ? r.expire_at : undefined };
      }
      return inner.onSubscribe?.(ctx);
    },
    async onSubRefresh(ctx) {
      if (subRefresh && nsOf(ctx.channel)?.sub_refresh_proxy_enabled) {
        const r = await subRefresh.call({ ...base, client: ctx.client, user: ctx.user, channel: ctx.channel }, ctx.headers);
        return { expired: r.expired === true, expireAt: typeof r.expire_at === 'number' ? r.expire_at : undefined, info: infoOf(r) };
      }
      return inner.onSubRefresh?.(ctx);
    },
    async onPublish(ctx) {
      let data = ctx.data;
      let skipHistory = false;
      let decided = false;
      if (publish && nsOf(ctx.channel)?.publish_proxy_enabled) {
        const r = await publish.call({ ...base, client: ctx.client, user: ctx.user, channel: ctx.channel, data: ctx.data }, ctx.headers);
        const d = dataOf(r);
        if (d !== undefined) data = d;
        skipHistory = r.skip_history === true;
        decided = true;
      }
      const own = inner.onPublish ? await inner.onPublish({ ...ctx, data }) : undefined;
      if (own) return { data: own.data ?? data, skipHistory: own.skipHistory ?? skipHistory };
      return decided ? { data, skipHistory } : undefined;
    },
    async onRpc(ctx) {
      if (rpc && rpcProxied(ctx.method)) {
        const r = await rpc.call({ ...base, client: ctx.client, user: ctx.user, method: ctx.method, data: ctx.data }, ctx.headers);
        return dataOf(r) ?? null;
      }
      if (!inner.onRpc) throw new ReplyError(Errors.methodNotFound);
      return inner.onRpc(ctx);
    },
  };
  // Defined only where something answers: a defined onRefresh/onSubRefresh makes
  // the server refresh credentials itself instead of the client, and an
  // undefined onRpc keeps "not available" (108) when nothing serves RPC.
  if (!refresh && !inner.onRefresh) delete hooks.onRefresh;
  if (!subRefresh && !inner.onSubRefresh) delete hooks.onSubRefresh;
  if (!rpc && !inner.onRpc) delete hooks.onRpc;
  return hooks;
}

/** True when any proxy is configured (then the proxy hooks wrap the in-process ones). */
export function anyProxy(config: Config): boolean {
  return !!(
    (config.client.proxy.connect.enabled && config.client.proxy.connect.endpoint) ||
    (config.client.proxy.refresh.enabled && config.client.proxy.refresh.endpoint) ||
    config.channel.proxy.subscribe.endpoint ||
    config.channel.proxy.publish.endpoint ||
    config.channel.proxy.sub_refresh.endpoint ||
    config.rpc.proxy.endpoint
  );
}
