import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { LockParamsSchemas, LockResultSchemas } from './locks.js';
import { MapParamsSchemas, MapResultSchemas } from './map-schemas.js';

/**
 * The HTTP server API's params and results as TypeBox schemas, in
 * Centrifugo v6 shapes (field names as in Centrifugo's api.proto). One set
 * of schemas serves everything: the Fastify route schemas of
 * `POST /api/<method>`, the `POST /api` pipeline and `batch` sub-commands
 * (through the same compiled validators, see validate.ts) and the OpenAPI
 * document (openapi.ts).
 *
 * Unknown keys are ignored, as Centrifugo's decoder ignores them; a `null`
 * for a typed field means "absent" (validate.ts drops it first), as a JSON
 * null leaves a Go field at its zero value.
 */

const Channel = Type.String({ minLength: 1, description: 'Channel name.' });
const Uint = (description: string) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });
const Flag = (description: string) => Type.Optional(Type.Boolean({ description }));
const Json = (description: string) => Type.Optional(Type.Unknown({ description }));
/** A map by string key, as `additionalProperties` (TypeBox's Record would say patternProperties, which OpenAPI tools rewrite). */
const MapOf = <T extends TSchema>(value: T, description: string) =>
  Type.Unsafe<Record<string, Static<T>>>({ type: 'object', additionalProperties: value, description });

const Tags = Type.Optional(MapOf(Type.String(), 'String tags attached to the publication.'));

const StreamPosition = Type.Object({
  offset: Type.Optional(Uint('Stream offset.')),
  epoch: Type.Optional(Type.String({ description: 'Stream epoch.' })),
});

/** Who a server-side action reaches: a user's connections, narrowed by client id or session. */
const Target = {
  user: Type.Optional(Type.String({ description: "User ID whose connections the action reaches ('' = anonymous)." })),
  client: Type.Optional(Type.String({ description: 'Only the connection with this client ID.' })),
  session: Type.Optional(Type.String({ description: 'Only the connection with this session ID.' })),
};

const PublishCommon = {
  data: Json('Data to publish (any JSON). Either data or b64data is required.'),
  b64data: Type.Optional(
    Type.String({
      description:
        'Base64 of the data to publish: JSON text is published as that JSON; other bytes as binary (Protobuf clients get the bytes, JSON clients the string "\\u0000b64:<base64>").',
    }),
  ),
  skip_history: Flag('Do not save the publication to the channel history.'),
  tags: Tags,
  idempotency_key: Type.Optional(Type.String({ description: 'A repeated publish with the same key returns the first result.' })),
  delta: Flag(
    "Allow sending this publication as a fossil delta to subscribers that asked for delta compression (default: the namespace's delta_publish).",
  ),
  conflation_key: Type.Optional(
    Type.String({
      description:
        "Switchboard: while a subscriber's connection is backed up, a queued publication of the channel with the same key is replaced by this one (history keeps both). Overrides the namespace's conflation_key.",
    }),
  ),
  fence: Type.Optional(
    Type.Object(
      { key: Type.String({ description: 'Lock key `<channel>/<field>`.' }), token: Type.String({ description: 'Fencing token.' }) },
      {
        description:
          "Switchboard: refused with 151 when the token is older than the lock key's current one (152: never issued); docs/LOCKS.md.",
      },
    ),
  ),
};

export const ParamsSchemas = {
  publish: Type.Object({ channel: Channel, ...PublishCommon }, { description: 'Publish data into a channel.' }),
  broadcast: Type.Object(
    { channels: Type.Array(Channel, { minItems: 1, description: 'Channels to publish into.' }), ...PublishCommon },
    { description: 'Publish the same data into many channels.' },
  ),
  subscribe: Type.Object(
    {
      ...Target,
      channel: Channel,
      info: Json('Channel info of the subscription (any JSON).'),
      b64info: Type.Optional(Type.String({ description: 'Base64 of the JSON channel info.' })),
      data: Json('Data sent to the client in the subscribe push (any JSON).'),
      b64data: Type.Optional(Type.String({ description: 'Base64 of the JSON data sent in the subscribe push.' })),
      recover_since: Type.Optional(StreamPosition),
    },
    { description: 'Subscribe a user (or one of its connections) to a channel. user or client is required.' },
  ),
  unsubscribe: Type.Object({ ...Target, channel: Channel }, { description: 'Unsubscribe a user (or one connection) from a channel.' }),
  disconnect: Type.Object(
    {
      ...Target,
      whitelist: Type.Optional(Type.Array(Type.String(), { description: 'Client IDs to keep connected.' })),
      disconnect: Type.Optional(
        Type.Object({
          code: Type.Optional(Type.Integer({ minimum: 3000, maximum: 4999, description: 'Disconnect code.' })),
          reason: Type.Optional(Type.String({ description: 'Disconnect reason.' })),
        }),
      ),
    },
    { description: 'Disconnect a user (or one connection).' },
  ),
  refresh: Type.Object(
    {
      ...Target,
      expired: Flag('Close the connections as expired (3005).'),
      expire_at: Type.Optional(Uint('New connection expiry, unix seconds.')),
      info: Json('New connection info (any JSON).'),
    },
    { description: "Refresh a user's connections (expiry and info)." },
  ),
  presence: Type.Object({ channel: Channel }, { description: 'Who is subscribed to a channel.' }),
  presence_stats: Type.Object({ channel: Channel }, { description: 'Counts of clients and users subscribed to a channel.' }),
  history: Type.Object(
    {
      channel: Channel,
      limit: Type.Optional(
        Type.Integer({
          minimum: -1,
          maximum: Number.MAX_SAFE_INTEGER,
          description: 'Publications to return: absent or 0 = only the stream position, -1 = everything kept.',
        }),
      ),
      since: Type.Optional(StreamPosition),
      reverse: Flag('Newest first.'),
    },
    { description: "A channel's history." },
  ),
  history_remove: Type.Object({ channel: Channel }, { description: "Remove a channel's history." }),
  channels: Type.Object(
    { pattern: Type.Optional(Type.String({ description: 'Glob (`*`) the channel names must match.' })) },
    { description: 'Active channels (with at least one subscriber).' },
  ),
  info: Type.Object({}, { description: 'The running nodes.' }),
  batch: Type.Object(
    {
      commands: Type.Array(
        Type.Unknown({
          description:
            'One object per command with one key, the method name, whose value is that method\u2019s params, e.g. {"publish": {"channel": "c", "data": {}}}. A bad command gets its own error reply.',
        }),
        { maxItems: 1000 },
      ),
      parallel: Flag('Run the commands concurrently instead of in order.'),
    },
    { description: 'Several commands in one request.' },
  ),
  revoke_token: Type.Object(
    {
      uid: Type.String({ minLength: 1, description: "The token's ID (its `jti` claim)." }),
      expire_at: Type.Optional(Uint('Unix seconds after which the revocation may be forgotten (the token expiry).')),
    },
    { description: 'Revoke a token by its ID: connections using it are closed and it cannot connect again.' },
  ),
  invalidate_user_tokens: Type.Object(
    {
      user: Type.String({ minLength: 1, description: 'User ID.' }),
      issued_before: Type.Optional(Uint('Tokens issued before this unix second are invalid (default: now).')),
      expire_at: Type.Optional(Uint('Unix seconds after which the invalidation may be forgotten.')),
      channel: Type.Optional(Type.String({ description: 'Only subscription tokens of this channel: not available here (108).' })),
    },
    { description: "Invalidate a user's tokens issued before a time." },
  ),
  connections: Type.Object(
    {
      user: Type.Optional(Type.String({ description: "Only this user's connections ('' = anonymous ones)." })),
      channel: Type.Optional(Type.String({ minLength: 1, description: "Switchboard: only this channel's subscribers." })),
      limit: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 10000, description: 'Switchboard: at most this many per node (default 1000).' }),
      ),
    },
    {
      description:
        "Connections on every node with their info (Centrifugo PRO's connections): a user's, a channel's subscribers, both, or all.",
    },
  ),
  // Switchboard: file transfer (files.enabled; docs/FILES.md).
  file_upload_token: Type.Object(
    {
      user: Type.String({ description: 'User ID the upload is made for (recorded as the uploader).' }),
      channel: Channel,
      ttl: Type.Optional(Uint('Seconds the token is valid (default files.token_ttl).')),
      max_size: Type.Optional(Uint('Largest file in bytes, below files.max_size (0 or absent: files.max_size).')),
    },
    { description: 'An upload token for one user and channel: the client sends it as `Authorization: Bearer` to the tus endpoint.' },
  ),
  file_url: Type.Object(
    {
      id: Type.String({ description: 'File ID (from the publication of a finished upload).' }),
      ttl: Type.Optional(Uint('Seconds the URL is valid (default files.url_ttl).')),
    },
    { description: 'A signed download URL (path and query) that expires.' },
  ),
  // Switchboard: field locks and user status (docs/LOCKS.md, docs/USER-STATUS.md).
  ...LockParamsSchemas,
  // Map subscriptions (docs/MAPS.md).
  ...MapParamsSchemas,
} satisfies Record<string, TSchema>;

export type ApiMethod = keyof typeof ParamsSchemas;
export type ParamsOf<M extends ApiMethod> = Static<(typeof ParamsSchemas)[M]>;

/** The server API methods (Centrifugo v6 shapes). */
export const API_METHODS = Object.keys(ParamsSchemas) as ApiMethod[];

// Results: documentation of what the executor answers (replies are written
// pre-serialized, so these schemas are not used to serialize).

export const ErrorSchema = Type.Object(
  {
    code: Type.Integer({
      description:
        'Error code (Centrifugo codes: 100 internal, 101 unauthorized, 102 unknown channel, 104 method not found, 107 bad request, 108 not available, ...).',
    }),
    message: Type.String(),
  },
  { description: 'A protocol error.' },
);
/** The body of a refused request (400, 401, 404). */
export const ErrorReplySchema = Type.Object({ error: ErrorSchema });
const Empty = Type.Object({});
const PublishResult = Type.Object({
  offset: Type.Optional(Uint('Offset of the publication in the channel stream (with history).')),
  epoch: Type.Optional(Type.String({ description: 'Epoch of the channel stream (with history).' })),
});
const ClientInfo = Type.Object({
  user: Type.String(),
  client: Type.String(),
  conn_info: Json('Connection info.'),
  chan_info: Json('Channel info.'),
});
const Publication = Type.Object({
  data: Type.Unknown(),
  info: Type.Optional(ClientInfo),
  offset: Type.Optional(Uint('Offset in the channel stream.')),
  tags: Tags,
  time: Type.Optional(Uint('Milliseconds since epoch when the publication was accepted.')),
});

export const ResultSchemas = {
  publish: PublishResult,
  broadcast: Type.Object({
    responses: Type.Array(Type.Object({ result: Type.Optional(PublishResult), error: Type.Optional(ErrorSchema) }), {
      description: 'One per channel, in the order of channels.',
    }),
  }),
  subscribe: Empty,
  unsubscribe: Empty,
  disconnect: Empty,
  refresh: Empty,
  presence: Type.Object({ presence: MapOf(ClientInfo, 'By client ID.') }),
  presence_stats: Type.Object({ num_clients: Uint('Connections subscribed.'), num_users: Uint('Distinct users subscribed.') }),
  history: Type.Object({ publications: Type.Array(Publication), offset: Uint('Stream top offset.'), epoch: Type.String() }),
  history_remove: Empty,
  channels: Type.Object({
    channels: MapOf(Type.Object({ num_clients: Uint('Subscribers on this node.') }), 'By channel name.'),
  }),
  info: Type.Object({
    nodes: Type.Array(
      Type.Object({
        uid: Type.String(),
        name: Type.String(),
        version: Type.String(),
        num_clients: Uint('Connections.'),
        num_users: Uint('Distinct users.'),
        num_subs: Uint('Subscriptions.'),
        num_channels: Uint('Channels with subscribers.'),
        uptime: Uint('Seconds since start.'),
      }),
    ),
  }),
  // batch answers {"replies": [...]} at the top level (see ReplySchema).
  batch: Type.Object({
    replies: Type.Array(
      Type.Object(
        { error: Type.Optional(ErrorSchema) },
        { additionalProperties: true, description: 'The result under the method name, e.g. {"publish": {...}}, or {"error": {...}}.' },
      ),
    ),
  }),
  revoke_token: Empty,
  invalidate_user_tokens: Empty,
  connections: Type.Object({
    connections: MapOf(
      Type.Object({
        user: Type.String(),
        transport: Type.String({ description: 'websocket, http_stream, sse, ...' }),
        protocol: Type.String({ description: 'json or protobuf.' }),
        app_name: Type.Optional(Type.String({ description: 'The name the client sent in connect.' })),
        app_version: Type.Optional(Type.String({ description: 'The version the client sent in connect.' })),
        connected_at_ms: Uint('Unix milliseconds when the connection was established.'),
        state: Type.Object({
          channels: MapOf(Type.Object({}), 'The channels the connection is subscribed to.'),
        }),
        conn_info: Json('Connection info.'),
        session: Type.String({ description: 'Switchboard: the session ID (a disconnect target).' }),
        node: Type.String({ description: 'Switchboard: UID of the node the connection is on.' }),
        ip: Type.String({ description: "Switchboard: the client's address." }),
      }),
      'By client ID.',
    ),
    missing_nodes: Type.Optional(
      Type.Array(Type.String(), { description: 'Switchboard: nodes that did not answer in time (their connections are absent).' }),
    ),
  }),
  file_upload_token: Type.Object({
    token: Type.String({ description: 'The upload token (a JWT).' }),
    expire_at: Uint('Unix seconds when it expires.'),
  }),
  file_url: Type.Object({
    url: Type.String({ description: 'Path and query of the download, e.g. /files/<id>?expires=...&sig=...' }),
    expires: Uint('Unix seconds when it expires.'),
  }),
  ...LockResultSchemas,
  ...MapResultSchemas,
} satisfies Record<ApiMethod, TSchema>;

/** The HTTP 200 body of `POST /api/<method>`: `{result}` or `{error}`; batch: `{replies}` or `{error}`. */
export function ReplySchema(method: ApiMethod): TSchema {
  if (method === 'batch')
    return Type.Object({ replies: Type.Optional(ResultSchemas.batch.properties.replies), error: Type.Optional(ErrorSchema) });
  return Type.Object({ result: Type.Optional(ResultSchemas[method]), error: Type.Optional(ErrorSchema) });
}
