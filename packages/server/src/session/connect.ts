import type { ResolvedChannel } from '../auth/channels.js';
import { Disconnects, DisconnectError } from '../protocol/codes.js';
import { parsePosition, type ParamsOf } from '../protocol/params.js';
import type { StreamPosition } from '../protocol/types.js';
import type { ConnectCredentials } from './credentials.js';
import type { CommandSession } from './handlers.js';

/** The presence key that counts a user's connections on all nodes (not a channel clients can name: it has a NUL). */
export function userConnectionsKey(user: string): string {
  return '\u0000user_connections:' + user;
}

export interface ServerSideSubscriptions {
  /** Subscribe results by channel, for the connect reply. */
  readonly results: Record<string, unknown>;
  /** To run right after the connect reply is queued. */
  readonly activations: Array<() => void>;
}

/**
 * Subscribes a connecting session to its server-side channels: the
 * credentials' channels and `subs`, the personal channel, the configured
 * ones; each recovers from the position the client sent in `subs`.
 *
 * One that fails ends the connection with 3004 (internal server error, the
 * client reconnects), as centrifuge does: a session missing channels it was
 * promised would sit half-connected, buffering for subscriptions nobody completes.
 */
export async function connectServerSide(
  s: CommandSession,
  creds: ConnectCredentials,
  p: ParamsOf<'connect'>,
): Promise<ServerSideSubscriptions> {
  const { ctx } = s;
  const opts = ctx.options;
  const user = creds.user;
  const all = new Set<string>([...creds.channels, ...Object.keys(creds.subs)]);
  const personal = ctx.channels.personalChannel(user, opts.subscribe_to_user_personal_channel);
  if (personal) all.add(personal);
  for (const tpl of opts.server_side_subscriptions) {
    if (tpl.includes('{user}') && user === '') continue;
    all.add(tpl.replaceAll('{user}', user));
  }
  const recoverReq = p.subs ?? {};
  const results: Record<string, unknown> = {};
  const activations: Array<() => void> = [];
  for (const channel of all) {
    let resolved: ResolvedChannel;
    try {
      resolved = ctx.channels.resolve(channel);
    } catch {
      ctx.log.warn({ client: s.id, channel }, 'server-side subscription to an invalid channel skipped');
      continue;
    }
    const r = recoverReq[channel] as Record<string, unknown> | undefined;
    const since: StreamPosition | undefined = r && typeof r === 'object' && r.recover === true ? parsePosition(r) : undefined;
    try {
      const { result, activate } = await s.subs.subscribe(channel, resolved, {
        recover: since !== undefined,
        since,
        chanInfo: creds.subs[channel]?.info,
        data: creds.subs[channel]?.data,
      });
      results[channel] = result;
      activations.push(activate);
    } catch (e) {
      // A failing engine fails every connect: say so once per interval, not once per client.
      if (s.live && ctx.limits.logOnce.shouldLog('server_side_subscription')) {
        ctx.log.warn({ client: s.id, channel, err: e instanceof Error ? e.message : String(e) }, 'server-side subscription failed');
      }
      throw new DisconnectError(Disconnects.serverError);
    }
  }
  return { results, activations };
}
