import type { IncomingMessage } from 'node:http';
import { originAllowed } from '../auth/origin.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeyedBuckets, LogOnce } from '../session/ratelimit.js';
import type { UpgradeRefusal } from '../transport/websocket.js';

/** The address a connection counts against. */
export function ipOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * Decides on each WebSocket upgrade before the handshake: the node is
 * serving, the origin is allowed, the address is under its connection count
 * and connect rate, and the node under its connection rate. Keeps the
 * per-address connection counts (from `opened` to `closed`).
 */
export class UpgradeGate {
  private readonly perIp = new Map<string, number>();
  private window = { second: 0, count: 0 };

  constructor(
    private readonly cfg: Config['client'],
    private readonly deps: {
      readonly metrics: Metrics;
      readonly log: Logger;
      /** Connection attempts per address (client.rate_limit.ip_connects_*). */
      readonly ipConnects: KeyedBuckets;
      readonly logOnce: LogOnce;
      /** False while the node is not started or draining. */
      readonly serving: () => boolean;
    },
  ) {}

  check(req: IncomingMessage): UpgradeRefusal | undefined {
    const c = this.cfg;
    const { metrics, log } = this.deps;
    if (!this.deps.serving()) return { status: 503, message: 'not ready' };
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, req.headers.host, c.allowed_origins)) {
      metrics.badInput.labels('origin').inc();
      log.info({ origin, ip: ipOf(req) }, 'websocket upgrade refused: origin not allowed');
      return { status: 403, message: 'origin not allowed' };
    }
    if (this.tracksIp || this.deps.ipConnects.enabled) {
      // The address costs a getpeername syscall (~5–10 µs a connect): asked only when a per-address limit is on.
      const ip = ipOf(req);
      if (this.tracksIp && (this.perIp.get(ip) ?? 0) >= c.connection_limit_per_ip) {
        metrics.limits.labels('connection_limit_per_ip').inc();
        return { status: 429, message: 'too many connections from this address' };
      }
      if (!this.deps.ipConnects.take(ip)) {
        metrics.limits.labels('ip_connects_per_second').inc();
        if (this.deps.logOnce.shouldLog('ip:' + ip)) log.warn({ ip }, 'connect rate limit hit for address');
        return { status: 429, message: 'too many connection attempts from this address' };
      }
    }
    if (c.connection_rate_limit > 0) {
      const sec = Math.floor(Date.now() / 1000);
      if (this.window.second !== sec) this.window = { second: sec, count: 0 };
      if (++this.window.count > c.connection_rate_limit) {
        metrics.limits.labels('connection_rate_limit').inc();
        return { status: 429, message: 'too many connection attempts' };
      }
    }
    return undefined;
  }

  /** Open connections are counted per address only for client.connection_limit_per_ip. */
  get tracksIp(): boolean {
    return this.cfg.connection_limit_per_ip > 0;
  }

  /** A connection from `ip` was accepted. */
  opened(ip: string): void {
    if (!this.tracksIp) return;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
  }

  /** A connection from `ip` has closed (once per `opened`). */
  closed(ip: string): void {
    if (!this.tracksIp) return;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }

  /** Open connections counted against `ip`. */
  connections(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }
}
