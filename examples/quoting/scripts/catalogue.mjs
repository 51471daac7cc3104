// The event catalogue, written once here and emitted as switchboard.json (the
// app's Switchboard config: rooms as namespaces, each with its JSON Schema).
// `npm run catalogue -w @switchboard/example-quoting` regenerates switchboard.json
// and shared/realtime-types.ts; a test fails when either is stale.
import { writeFileSync } from 'node:fs';

const str = { type: 'string' };
const at = { type: 'string' };
const user = { type: 'string', minLength: 1 };
const event = (type, properties, required) => ({
  type: 'object',
  properties: { type: { const: type }, ...properties },
  required: ['type', ...required],
  additionalProperties: false,
});
const family = (title, description, events) => ({ title, description, type: 'object', discriminator: { propertyName: 'type' }, oneOf: events });
const FIELDS = ['premium', 'deductible', 'coverage', 'notes'];
const summary = {
  type: 'object',
  properties: {
    id: str,
    customer: str,
    client: str,
    premium: str,
    status: { enum: ['draft', 'review', 'bound', 'declined'] },
    version: { type: 'integer', minimum: 0 },
    updatedBy: str,
    updatedAt: at,
  },
  required: ['id', 'customer', 'client', 'premium', 'status', 'version', 'updatedBy', 'updatedAt'],
  additionalProperties: false,
};

const namespaces = [
  {
    name: 'quotes',
    history_size: 200,
    history_ttl: '1h',
    force_recovery: true,
    publication_schema: family('QuoteListEvent', 'The live quote list (channel "quotes:list"; agents and admins).', [
      event('quote.created', { quote: summary }, ['quote']),
      event('quote.changed', { quote: summary }, ['quote']),
    ]),
  },
  {
    name: 'quote',
    history_size: 200,
    history_ttl: '1h',
    force_recovery: true,
    publication_schema: family('QuoteEvent', 'Edits of one quote (channel "quote:<id>"; agents, admins, and the quote\'s client).', [
      event(
        'quote.field_saved',
        { quoteId: str, field: { enum: FIELDS }, value: { type: 'string', maxLength: 2000 }, by: user, token: str, version: { type: 'integer' }, at },
        ['quoteId', 'field', 'value', 'by', 'version', 'at'],
      ),
      event('quote.status', { quoteId: str, status: { enum: ['draft', 'review', 'bound', 'declined'] }, by: user, at }, ['quoteId', 'status', 'by', 'at']),
    ]),
  },
  {
    name: 'policy',
    history_size: 50,
    history_ttl: '1h',
    force_recovery: true,
    publication_schema: family('PolicyEvent', 'Decisions on a quote (channel "policy:<quote id>"; its client, agents, admins).', [
      event('policy.decided', { quoteId: str, decision: { enum: ['approved', 'declined', 'referred'] }, premium: str, by: user, at }, [
        'quoteId',
        'decision',
        'premium',
        'by',
        'at',
      ]),
    ]),
  },
  {
    name: 'analytics',
    priority: 'low',
    publication_schema: family('AnalyticsEvent', 'The bulk metrics stream (channel "analytics:live"; agents, admins). Low priority.', [
      event('analytics.tick', { metric: str, value: { type: 'number' }, seq: { type: 'integer' }, at, labels: { type: 'object', additionalProperties: str } }, [
        'metric',
        'value',
        'seq',
        'at',
      ]),
    ]),
  },
  {
    name: 'notifications',
    priority: 'high',
    allow_user_limited_channels: true,
    history_size: 100,
    history_ttl: '1h',
    force_recovery: true,
    publication_schema: family('NotificationEvent', 'A user\'s notifications (channel "notifications:#<user>", that user only). High priority.', [
      event('notification.created', { id: str, title: { type: 'string', maxLength: 200 }, body: { type: 'string', maxLength: 2000 }, priority: { enum: ['urgent', 'normal'] }, bulkSeen: { type: 'integer' }, at }, [
        'id',
        'title',
        'priority',
        'at',
      ]),
    ]),
  },
  {
    name: 'agent',
    presence: true,
    join_leave: true,
    force_push_join_leave: true,
    allow_presence_for_subscriber: true,
    publication_schema: family('AgentEvent', 'The agents\' room (channel "agent:lobby"; agents, admins): presence and status.', [
      event('agent.status', { user, status: { enum: ['available', 'busy', 'away'] }, at }, ['user', 'status', 'at']),
    ]),
  },
  {
    name: 'admin',
    history_size: 100,
    history_ttl: '1h',
    publication_schema: family('AdminEvent', 'The admins\' room (channel "admin:ops"; admins only).', [
      event('admin.audit', { action: str, by: user, target: str, at }, ['action', 'by', 'at']),
    ]),
  },
  {
    name: 'connection',
    history_size: 100,
    history_ttl: '1h',
    publication_schema: family('ConnectionEvent', 'Who connected or left (channel "connection:log"; admins only).', [
      event('connection.joined', { user, role: str, at }, ['user', 'role', 'at']),
      event('connection.left', { user, role: str, code: { type: 'integer' }, at }, ['user', 'role', 'at']),
    ]),
  },
  {
    // Who edits which field: the node writes lock holders here (map key = field), clients only read.
    name: 'locks',
    subscription_type: 'map',
    // An ephemeral map needs a key TTL: longer than any lease (locks.max_ttl_ms, 60 s); a renew rewrites the key.
    map: { mode: 'ephemeral', key_ttl: '90s' },
  },
  {
    name: 'attachments',
    history_size: 100,
    history_ttl: '24h',
    force_recovery: true,
    publication_schema: {
      title: 'AttachmentEvent',
      description: 'Files attached to a quote (channel "attachments:<quote id>"), published by the node when a tus upload completes.',
      type: 'object',
      properties: {
        file: {
          type: 'object',
          properties: { id: str, name: str, size: { type: 'integer' }, type: str, sha256: str, user: str },
          required: ['id', 'name', 'size', 'sha256', 'user'],
          additionalProperties: false,
        },
      },
      required: ['file'],
      additionalProperties: false,
    },
  },
];

const config = {
  client: { allowed_origins: ['*'] },
  channel: { namespaces },
  files: { enabled: true, max_size: 10485760, expire_after: '1h' },
  locks: { enabled: true, default_ttl_ms: 15000 },
  user_status: { enabled: true },
};
// `node scripts/catalogue.mjs [out.json]` (default: switchboard.json next to this folder).
const out = process.argv[2] ?? new URL('../switchboard.json', import.meta.url);
writeFileSync(out, JSON.stringify(config, null, 2) + '\n');
