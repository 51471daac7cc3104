import type { Logger } from '../observability/logger.js';

/**
 * Logs an engine error at most once per kind per interval, with how many of
 * that kind came since the last line: an outage is a few lines, not one per
 * command, and nothing is dropped without a trace.
 */
export class ErrorLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    public log: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  error(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.emit('error', kind, fields, msg, now);
  }

  warn(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.emit('warn', kind, fields, msg, now);
  }

  private emit(level: 'error' | 'warn', kind: string, fields: Record<string, unknown>, msg: string, now: number): void {
    // Kinds are a handful of fixed strings, so this map stays small.
    const e = this.last.get(kind);
    if (e && now - e.at < this.intervalMs) {
      e.suppressed++;
      return;
    }
    const suppressed = e?.suppressed ?? 0;
    this.last.set(kind, { at: now, suppressed: 0 });
    this.log[level](suppressed > 0 ? { ...fields, kind, suppressed } : { ...fields, kind }, msg);
  }
}
