/** Rooms (channels) by role: who may enter which. The one place the app decides it. */
import type { Quotes, User } from './store.js';

export const rooms = {
  quoteList: () => 'quotes:list',
  quote: (id: string) => `quote:${id}`,
  attachments: (id: string) => `attachments:${id}`,
  policy: (id: string) => `policy:${id}`,
  analytics: () => 'analytics:live',
  notifications: (user: string) => `notifications:#${user}`,
  agents: () => 'agent:lobby',
  admin: () => 'admin:ops',
  connections: () => 'connection:log',
  locks: (quoteId: string) => `locks:quote:${quoteId}`,
} as const;

/** True when `user` may subscribe to `channel`. */
export function mayEnter(user: User, channel: string, quotes: Quotes): boolean {
  const at = channel.indexOf(':');
  const ns = at < 0 ? '' : channel.slice(0, at);
  const rest = at < 0 ? channel : channel.slice(at + 1);
  if (ns === 'notifications') return rest === `#${user.id}`;
  if (user.role === 'admin') return true;
  const quoteId = ns === 'locks' ? rest.replace(/^quote:/, '') : rest;
  const ownQuote = quotes.get(quoteId)?.client === user.id;
  switch (ns) {
    case 'quote':
    case 'policy':
      return user.role === 'agent' || ownQuote;
    case 'quotes':
    case 'attachments':
    case 'analytics':
    case 'agent':
    case 'locks':
      return user.role === 'agent';
    default: // admin, connection and anything else: admins only
      return false;
  }
}
