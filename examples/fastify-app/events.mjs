// The app's event catalogue: every real-time event it publishes, by room.
// Rooms map to Switchboard channels: global, user:#<id> (personal, only that
// user may be in it), project:<id>, agent:<id>.

/**
 * @typedef {{ type: 'connection.joined', user: string, at: string }} ConnectionEvent
 * @typedef {{ type: 'quote.updated', symbol: string, price: number, currency: string, at: string }} QuoteEvent
 * @typedef {{ type: 'analytics.tick', metric: string, value: number, at: string }} AnalyticsEvent
 * @typedef {{ type: 'notification.created', id: string, title: string, body?: string, level: 'info' | 'warning' | 'error' }} NotificationEvent
 * @typedef {{ type: 'agent.status', agentId: string, status: 'idle' | 'running' | 'done' | 'failed', progress?: number }} AgentEvent
 * @typedef {{ type: 'project.updated', projectId: string, name: string, updatedBy: string }} ProjectEvent
 * @typedef {ConnectionEvent | QuoteEvent | AnalyticsEvent | NotificationEvent | AgentEvent | ProjectEvent} AppEvent
 */

export const rooms = {
  global: () => 'global',
  user: (/** @type {string} */ id) => `user:#${id}`,
  project: (/** @type {string} */ id) => `project:${id}`,
  agent: (/** @type {string} */ id) => `agent:${id}`,
};

const REQUIRED = {
  'connection.joined': ['user', 'at'],
  'quote.updated': ['symbol', 'price', 'currency', 'at'],
  'analytics.tick': ['metric', 'value', 'at'],
  'notification.created': ['id', 'title', 'level'],
  'agent.status': ['agentId', 'status'],
  'project.updated': ['projectId', 'name', 'updatedBy'],
};

/** Refuses an event that is not in the catalogue or lacks a field, before it reaches any client. */
export function checkEvent(/** @type {AppEvent} */ event) {
  const fields = REQUIRED[/** @type {keyof typeof REQUIRED} */ (event?.type)];
  if (!fields) throw new Error(`unknown event type ${event?.type}`);
  for (const f of fields) if (!(f in event)) throw new Error(`${event.type}: missing ${f}`);
  return event;
}
