import { Disconnects, DisconnectError, Errors, ReplyError } from '../protocol/codes.js';
import type { ClientOptions, SessionContext } from './context.js';
import { TokenBucket } from './ratelimit.js';

/** Who the guard speaks for in logs. */
export interface GuardedClient {
  readonly id: string;
  readonly user: string;
  readonly ip: string;
}

/**
 * One connection's command guard: its rate-limit buckets, refusals (111,
 * then 3013 after `rate_limit.disconnect_after` in a row) and the count of
 * error replies (3509 at `max_protocol_errors`). Bad input is counted every
 * time and logged once per address and kind per interval.
 */
export class CommandGuard {
  private readonly commands: TokenBucket | undefined;
  private readonly publications: TokenBucket | undefined;
  /** Refused-by-limit commands in a row, and error replies in total. */
  private refusedInRow = 0;
  private errorReplies = 0;
  private readonly disconnectAfter: number;
  private readonly maxErrors: number;

  constructor(
    private readonly ctx: Pick<SessionContext, 'metrics' | 'log' | 'limits'>,
    options: Pick<ClientOptions, 'rate_limit' | 'max_protocol_errors'>,
    private readonly client: GuardedClient,
  ) {
    const rl = options.rate_limit;
    if (rl.commands_per_second > 0)
      this.commands = new TokenBucket(rl.commands_per_second, Math.max(rl.commands_burst, rl.commands_per_second));
    if (rl.publications_per_second > 0)
      this.publications = new TokenBucket(rl.publications_per_second, Math.max(rl.publications_burst, rl.publications_per_second));
    this.disconnectAfter = rl.disconnect_after;
    this.maxErrors = options.max_protocol_errors;
  }

  /** Takes a command token; throws the refusal (ReplyError 111 or DisconnectError 3013) when there is none. */
  command(): void {
    if (this.commands && !this.commands.take()) this.refuse('commands_per_second');
  }

  /** Takes a publication token of this connection; throws the refusal when there is none. */
  publication(now: number): void {
    if (this.publications && !this.publications.take(now)) this.refuse('publications_per_second');
  }

  /** Refuses a command over a rate limit (111); persistent excess closes the connection (3013). */
  refuse(limit: string): never {
    const { ctx, client } = this;
    ctx.metrics.limits.labels(limit).inc();
    if (ctx.limits.logOnce.shouldLog(limit + ':' + (client.user || client.ip))) {
      ctx.log.warn({ client: client.id, user: client.user, ip: client.ip, limit }, 'rate limit hit');
    }
    if (this.disconnectAfter > 0 && ++this.refusedInRow >= this.disconnectAfter) throw new DisconnectError(Disconnects.tooManyRequests);
    throw new ReplyError(Errors.tooManyRequests);
  }

  /** A command went through (or failed for a reason other than a limit): refusals in a row start over. */
  passed(): void {
    this.refusedInRow = 0;
  }

  /** Counts an error reply; true when the connection has now made too many (close it with 3509). */
  errorReply(): boolean {
    if (this.maxErrors > 0 && ++this.errorReplies >= this.maxErrors) {
      this.ctx.metrics.limits.labels('max_protocol_errors').inc();
      return true;
    }
    return false;
  }

  /** Counts bad input and logs it once per address and kind per interval: a flood is not a log flood. */
  badInput(kind: string): void {
    const { ctx, client } = this;
    ctx.metrics.badInput.labels(kind).inc();
    if (ctx.limits.logOnce.shouldLog('bad:' + kind + ':' + client.ip)) {
      ctx.log.info({ client: client.id, user: client.user, ip: client.ip, kind }, 'bad input from client');
    }
  }
}
