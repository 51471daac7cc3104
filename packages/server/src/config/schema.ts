import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * The configuration schema. Key names follow Centrifugo v6 so that its
 * config files start unchanged; Switchboard's own additions are marked.
 * Durations accept "25s", "500ms", "1m", "2h" or a number of seconds.
 */
export const DURATION = 'duration';
const Duration = (def: string) => Type.Union([Type.String(), Type.Number()], { default: def, description: DURATION });
const Bool = (def: boolean) => Type.Boolean({ default: def });
const Int = (def: number) => Type.Integer({ default: def, minimum: 0 });
const Str = (def: string) => Type.String({ default: def });
const Obj = <T extends Record<string, TSchema>>(props: T) => Type.Object(props, { default: {}, additionalProperties: false });

/** A namespace's `map` block (Centrifugo 6.8 key names; Switchboard additions marked). */
export const MapOptionsProps = {
  /** ephemeral: streamless, a resubscribe resyncs in full; durable / persistent: a stream, recovery after a disconnect. */
  mode: Type.Union([Type.Literal('ephemeral'), Type.Literal('durable'), Type.Literal('persistent')], { default: 'persistent' }),
  /** Keys lapse this long after their last publish (required for ephemeral and durable; 0s = never). */
  key_ttl: Duration('0s'),
  /** Stream entries kept (durable / persistent; 0 = 100). */
  stream_size: Int(0),
  /** Stream entries older than this are dropped (durable / persistent; 0s = 1m). */
  stream_ttl: Duration('0s'),
  /** Channel meta (epoch, offset) outlives its last mutation by this (0s = engine default, 30 days). */
  meta_ttl: Duration('0s'),
  allow_publish_for_client: Bool(false),
  allow_publish_for_subscriber: Bool(false),
  allow_publish_for_anonymous: Bool(false),
  allow_remove_for_client: Bool(false),
  allow_remove_for_subscriber: Bool(false),
  allow_remove_for_anonymous: Bool(false),
  /** The key of a client publish/remove: as sent (''), or the connection's client id / user id. */
  client_key: Type.Union([Type.Literal(''), Type.Literal('client_id'), Type.Literal('user_id')], { default: '' }),
  /** A connection's entry (key = its client id) is removed when it unsubscribes or disconnects. */
  remove_client_on_unsubscribe: Bool(false),
  default_page_size: Int(100),
  min_page_size: Int(100),
  max_page_size: Int(1000),
  /** Most stream publications a subscribe catches up in its live step (0 = max_page_size). */
  live_transition_max_publication_limit: Int(0),
  /** Longest a subscribe may take from its first state page to live (else it starts over). */
  subscribe_catch_up_timeout: Duration('5s'),
  /** Switchboard: keys a channel may hold (a publish of a new key beyond is refused, code 106; 0 = no limit). */
  max_keys: Int(0),
  /** Switchboard: largest value (bytes of JSON) a publish may set (code 107 beyond; 0 = no limit). */
  max_value_size: Int(0),
  /** Switchboard: longest key (characters; code 107 beyond). */
  max_key_length: Int(256),
};
/** A shared poll namespace's polling (docs/SHARED-POLL.md); read when subscription_type is 'shared_poll'. */
const SharedPollNamespace = Obj({
  refresh_interval: Duration('10s'),
  refresh_batch_size: Type.Integer({ default: 1000, minimum: 1 }),
  max_keys_per_connection: Type.Integer({ default: 5000, minimum: 1 }),
  mode: Type.Union([Type.Literal('versionless'), Type.Literal('versioned')], { default: 'versionless' }),
  /** A channel's poll state is dropped this long after its last key was untracked. */
  channel_shutdown_delay: Duration('1s'),
  /** A tracked key whose signature expired this long ago is dropped; a track with such a signature gets 109. */
  track_expired_extra_delay: Duration('25s'),
  /** Switchboard: longest wait between polls of a channel while its backend keeps failing (the interval doubles per failure up to this). */
  max_backoff: Duration('60s'),
});

export const NamespaceOptionsProps = {
  presence: Bool(false),
  join_leave: Bool(false),
  force_push_join_leave: Bool(false),
  history_size: Int(0),
  history_ttl: Duration('0s'),
  history_meta_ttl: Duration('0s'),
  force_recovery: Bool(false),
  allow_recovery: Bool(false),
  force_positioning: Bool(false),
  allow_positioning: Bool(false),
  allow_subscribe_for_client: Bool(false),
  allow_subscribe_for_anonymous: Bool(false),
  allow_publish_for_subscriber: Bool(false),
  allow_publish_for_client: Bool(false),
  allow_publish_for_anonymous: Bool(false),
  allow_history_for_subscriber: Bool(false),
  allow_history_for_client: Bool(false),
  allow_history_for_anonymous: Bool(false),
  allow_presence_for_subscriber: Bool(false),
  allow_presence_for_client: Bool(false),
  allow_presence_for_anonymous: Bool(false),
  allow_user_limited_channels: Bool(false),
  channel_regex: Str(''),
  /** Centrifugo proxy switches: ask the app backend (channel.proxy.*). */
  subscribe_proxy_enabled: Bool(false),
  publish_proxy_enabled: Bool(false),
  sub_refresh_proxy_enabled: Bool(false),
  /** Delta compression types subscribers may ask for (only 'fossil' exists). */
  allowed_delta_types: Type.Optional(Type.Array(Type.Literal('fossil'))),
  /** Publications into this namespace may go out as deltas by default (API publish `delta` asks per publication). */
  delta_publish: Bool(false),
  /** Subscribers may filter publications by tags (the SDK's `tagsFilter`). */
  allow_tags_filter: Bool(false),
  /** Subscribers that ask for it get a numeric channel id and pushes routed by it (smaller pushes). */
  allow_channel_compaction: Bool(false),
  /** Switchboard: publications per second accepted into this namespace on this node (0 = unlimited). */
  publications_per_second: Int(0),
  /** Switchboard: JSON Schema that client publications into this namespace must match (error 107 with the failing path). */
  publication_schema: Type.Optional(Type.Unknown()),
  /** Switchboard: a connection JWT may attach files to channels of this namespace (files.enabled; docs/FILES.md). */
  allow_file_upload: Bool(false),
  /** Switchboard: priority class in a backed-up connection queue: high (with replies) before normal before low. */
  priority: Type.Union([Type.Literal('high'), Type.Literal('normal'), Type.Literal('low')], { default: 'normal' }),
  /** Switchboard: default conflation key of publications: a JSON Pointer into the data ("/symbol") or a fixed key; '' = none. */
  conflation_key: Str(''),
  /** Switchboard: client publications must carry a current fencing token (`$fence`, docs/LOCKS.md). */
  fenced: Bool(false),
  /** What a subscription to this namespace's channels is: a stream, a map, server-managed map presence (docs/MAPS.md), or shared poll: clients track keys and the server polls the backend for them (docs/SHARED-POLL.md). */
  subscription_type: Type.Union(
    [Type.Literal('stream'), Type.Literal('map'), Type.Literal('map_clients'), Type.Literal('map_users'), Type.Literal('shared_poll')],
    { default: 'stream' },
  ),
  /** Subscribing here also keeps an entry per connection in the map_clients channel `prefix + channel` ('' = none). */
  map_clients_presence_channel_prefix: Str(''),
  /** Subscribing here also keeps an entry per user in the map_users channel `prefix + channel` ('' = none). */
  map_users_presence_channel_prefix: Str(''),
  /** Map channels (subscription_type map / map_clients / map_users); docs/MAPS.md. */
  map: Obj(MapOptionsProps),
  shared_poll: SharedPollNamespace,
};

const ProxyEndpoint = Obj({
  enabled: Bool(false),
  endpoint: Str(''),
  timeout: Duration('1s'),
  /** Request headers forwarded to the backend (allow-list, case-insensitive). */
  http_headers: Type.Array(Type.String(), { default: [] }),
  /** Switchboard: concurrent calls to this endpoint from one node. */
  max_concurrency: Int(256),
});

/** The keys and claim checks shared by connection and subscription tokens. */
const TokenKeyProps = {
  hmac_secret_key: Str(''),
  rsa_public_key: Str(''),
  ecdsa_public_key: Str(''),
  ed25519_public_key: Str(''),
  jwks_public_endpoint: Str(''),
  audience: Str(''),
  issuer: Str(''),
};

const TokenSchema = Obj({
  ...TokenKeyProps,
  /** Switchboard: tolerated clock difference for exp/nbf/iat. */
  clock_skew: Duration('0s'),
  /** Switchboard: least time between two JWKS refetches caused by an unknown key id (rotation is picked up after at most this long). */
  jwks_refresh_cooldown: Duration('30s'),
  /** Switchboard: the JWT algorithms accepted; the key type must match too. */
  algorithms: Type.Array(Type.String(), {
    default: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
  }),
});

export const ConfigSchema = Obj({
  http_server: Obj({
    address: Str('0.0.0.0'),
    port: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  }),
  client: Obj({
    token: TokenSchema,
    subscription_token: Obj({
      enabled: Bool(false),
      ...TokenKeyProps,
    }),
    allowed_origins: Type.Array(Type.String(), { default: [] }),
    allow_anonymous_connect_without_token: Bool(false),
    ping_interval: Duration('25s'),
    pong_timeout: Duration('8s'),
    expired_close_delay: Duration('25s'),
    stale_close_delay: Duration('10s'),
    queue_max_size: Int(1048576),
    channel_limit: Int(128),
    user_connection_limit: Int(0),
    connection_limit: Int(0),
    /** Switchboard: concurrent connections from one IP (0 = unlimited). */
    connection_limit_per_ip: Int(0),
    /** Switchboard: new connections per second accepted by this node (0 = unlimited). */
    connection_rate_limit: Int(0),
    history_max_publication_limit: Int(300),
    recovery_max_publication_limit: Int(300),
    max_message_size: Int(65536),
    subscribe_to_user_personal_channel: Obj({
      enabled: Bool(false),
      personal_channel_namespace: Str(''),
    }),
    proxy: Obj({
      connect: ProxyEndpoint,
      refresh: ProxyEndpoint,
    }),
    /** Switchboard: token-bucket limits; exceeding gives error 111, persistent excess closes with 3013. */
    rate_limit: Obj({
      /** Commands per second per connection (0 = unlimited) and the burst allowed. */
      commands_per_second: Int(0),
      commands_burst: Int(0),
      /** Client publications per second per connection. */
      publications_per_second: Int(0),
      publications_burst: Int(0),
      /** Client publications per second per user, summed over the user's connections (on all nodes with the Redis engine). */
      user_publications_per_second: Int(0),
      /** New connections per second from one IP address (refused with HTTP 429). */
      ip_connects_per_second: Int(0),
      ip_connects_burst: Int(0),
      /** Close with 3013 after this many refused commands in a row (0 = never close). */
      disconnect_after: Int(50),
    }),
    /** Switchboard: close with 3509 after this many error replies on one connection (0 = never). */
    max_protocol_errors: Int(100),
    /** Channels every connection is subscribed to by the server; "{user}" is replaced by the user ID. */
    server_side_subscriptions: Type.Array(Type.String(), { default: [] }),
    /** No token needed and every channel open to every client (subscribe, publish, presence, history): demos and tests only. */
    insecure: Bool(false),
    /** Commands of one connection handled at once (0 or 1: one after another, in order); replies are matched by id. */
    concurrency: Int(0),
  }),
  channel: Obj({
    max_length: Int(255),
    private_prefix: Str('$'),
    namespace_boundary: Str(':'),
    user_boundary: Str('#'),
    user_separator: Str(','),
    proxy: Obj({
      subscribe: ProxyEndpoint,
      publish: ProxyEndpoint,
      sub_refresh: ProxyEndpoint,
      shared_poll_refresh: ProxyEndpoint,
    }),
    without_namespace: Obj(NamespaceOptionsProps),
    namespaces: Type.Array(
      Type.Object({ name: Type.String({ pattern: '^[-a-zA-Z0-9_.]{2,}$' }), ...NamespaceOptionsProps }, { additionalProperties: false }),
      { default: [] },
    ),
  }),
  websocket: Obj({
    /** permessage-deflate (off by default: CPU and memory per connection). */
    compression: Bool(false),
    compression_min_size: Int(256),
    compression_level: Type.Integer({ default: 1, minimum: 0, maximum: 9 }),
  }),
  /** HTTP-streaming with bidirectional emulation (`/connection/http_stream`, commands POSTed to `/emulation`). */
  http_stream: Obj({
    enabled: Bool(false),
    /** Bytes of the initial POST (the connect command). */
    max_request_body_size: Int(65536),
  }),
  /** Server-Sent Events with bidirectional emulation (`/connection/sse`, JSON only). */
  sse: Obj({
    enabled: Bool(false),
    /** Bytes of the initial POST (browsers connect with GET and `cf_connect`, where this does not apply). */
    max_request_body_size: Int(65536),
  }),
  /** The `/emulation` endpoint, on when http_stream or sse is. */
  emulation: Obj({
    /** Bytes of one emulation request (a batch of client commands). */
    max_request_body_size: Int(65536),
  }),
  /** Unidirectional transports (Centrifugo v6 names): clients without an SDK connect and only listen. */
  uni_websocket: Obj({
    enabled: Bool(false),
    handler_prefix: Str('/connection/uni_websocket'),
    /** Inbound messages above this close the connection (1009); only the connect request is ever read. */
    message_size_limit: Int(65536),
    /** Several pushes per frame, newline-delimited (off: one push per frame). */
    join_push_messages: Bool(false),
    /** No disconnect push before the close frame (the close frame carries the same code and reason). */
    disable_disconnect_push: Bool(false),
  }),
  uni_sse: Obj({
    enabled: Bool(false),
    handler_prefix: Str('/connection/uni_sse'),
    /** Largest connect request in a POST body (413 above). */
    max_request_body_size: Int(65536),
  }),
  uni_http_stream: Obj({
    enabled: Bool(false),
    handler_prefix: Str('/connection/uni_http_stream'),
    /** Largest connect request in the POST body (413 above). */
    max_request_body_size: Int(65536),
  }),
  rpc: Obj({
    proxy: ProxyEndpoint,
    namespace_boundary: Str(':'),
    without_namespace: Obj({ proxy_enabled: Bool(false) }),
    namespaces: Type.Array(Type.Object({ name: Type.String(), proxy_enabled: Bool(false) }, { additionalProperties: false }), {
      default: [],
    }),
    /** Switchboard: JSON Schema per RPC method for the request data. */
    schemas: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  }),
  http_api: Obj({
    key: Str(''),
    disabled: Bool(false),
    insecure: Bool(false),
    /** Switchboard: serve the API on this port instead of the main one (0 = on the main port), as Centrifugo's internal_port moves it. */
    port: Int(0),
    /** Switchboard: request body limit in bytes. */
    body_limit: Int(10485760),
  }),
  engine: Obj({
    type: Type.Union([Type.Literal('memory'), Type.Literal('redis')], { default: 'memory' }),
    redis: Obj({
      address: Type.Union([Type.String(), Type.Array(Type.String())], { default: 'redis://127.0.0.1:6379' }),
      prefix: Str('switchboard'),
      password: Str(''),
      db: Int(0),
      connect_timeout: Duration('1s'),
      io_timeout: Duration('4s'),
      tls: Bool(false),
      sentinel_addresses: Type.Array(Type.String(), { default: [] }),
      sentinel_master_name: Str(''),
      cluster_addresses: Type.Array(Type.String(), { default: [] }),
      /** Switchboard: a presence entry vanishes this long after its node stopped refreshing it (node died). */
      presence_ttl: Duration('60s'),
      /** Switchboard: a node vanishes from the info API this long after its last announcement. */
      node_info_ttl: Duration('10s'),
      /** Switchboard: how long a publish result is kept for its idempotency_key. */
      idempotent_result_ttl: Duration('5m'),
      /** Switchboard: consecutive Redis timeouts/failures that open the circuit breaker (commands then fail at once). */
      circuit_breaker_threshold: Int(5),
      /** Switchboard: how long the breaker stays open before a probe; also the longest pause between reconnect attempts. */
      circuit_breaker_cooldown: Duration('2s'),
      /**
       * Switchboard: replicas that must have a publication (Redis WAIT) before it is acknowledged and sent
       * to subscribers (0 = off). With it a failover never loses a publication anybody saw or was told of.
       */
      replica_wait: Int(0),
      /** Switchboard: how long a publish waits for replica_wait replicas before it fails with 100. */
      replica_wait_timeout: Duration('1s'),
    }),
    /** Switchboard: "nats" carries publications and join/leave between nodes over NATS (history and presence stay in Redis); see docs/SCALING.md. */
    broker: Type.Union([Type.Literal(''), Type.Literal('redis'), Type.Literal('nats')], { default: '' }),
    nats: Obj({
      url: Type.Union([Type.String(), Type.Array(Type.String())], { default: 'nats://127.0.0.1:4222' }),
      /** Every subject starts with it. */
      prefix: Str('switchboard'),
      connect_timeout: Duration('1s'),
      /** How long a publication that arrived ahead of a missing offset waits for it before going out after the gap. */
      gap_timeout: Duration('1s'),
      /** A channel quiet this long has its position checked against history once (a last publication lost in NATS). */
      position_check: Duration('5s'),
      /** Where history lives with this broker: Redis (default) or one JetStream stream (docs/SCALING.md). */
      history: Type.Union([Type.Literal('redis'), Type.Literal('jetstream')], { default: 'redis' }),
      /** With history "jetstream": the stream on `<prefix>.h.>` (made as `<prefix>_history_<random>` when none is there; its limits set to these). */
      jetstream: Obj({
        storage: Type.Union([Type.Literal('file'), Type.Literal('memory')], { default: 'file' }),
        /** The stream's max_msgs_per_subject: no namespace's history_size may be above it. */
        max_history_size: Int(1000),
        replicas: Int(1),
        /** The stream's max_age: a channel quiet this long loses its position (new epoch), like history_meta_ttl. */
        max_age: Duration('720h'),
      }),
    }),
  }),
  log: Obj({
    level: Type.Union(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'none'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
  }),
  /** Switchboard: node identity shown in the info API. */
  node: Obj({
    name: Str(''),
  }),
  /** Switchboard: graceful shutdown. */
  shutdown: Obj({
    timeout: Duration('30s'),
    batch_size: Int(1000),
    batch_interval: Duration('20ms'),
  }),
  // Accepted so that Centrifugo config files start unchanged; always on here.
  prometheus: Type.Object({ enabled: Bool(true) }, { default: {} }),
  health: Type.Object({ enabled: Bool(true) }, { default: {} }),
  /** Serve the HTTP API's OpenAPI document at GET /api/openapi.json (no API key), as Centrifugo serves its swagger. */
  swagger: Obj({ enabled: Bool(false) }),
  /** The admin web UI at /admin (Centrifugo v6 `admin`): log in with `password`, tokens signed with `secret`. */
  admin: Obj({
    enabled: Bool(false),
    password: Str(''),
    secret: Str(''),
    /** No login at all: for development only (logged as a warning at start). */
    insecure: Bool(false),
  }),
  /** Switchboard: resumable uploads (tus) and downloads under `files.path`; see docs/FILES.md. */
  files: Obj({
    enabled: Bool(false),
    /** URL prefix of uploads (`POST <path>/`) and downloads (`GET <path>/<id>`). */
    path: Str('/files'),
    /** Directory of the files and their tus metadata; shared by all nodes (required when enabled). */
    dir: Str(''),
    /** Largest file in bytes (larger: HTTP 413). */
    max_size: Int(104857600),
    /** HMAC key of upload tokens and signed download URLs; the same on every node (empty: random per process). */
    secret: Str(''),
    /** Default lifetime of an upload token and of a signed download URL. */
    token_ttl: Duration('1h'),
    url_ttl: Duration('1h'),
    /** An upload not finished this long after it was created is refused (410) and deleted. */
    expire_after: Duration('24h'),
    /** How often each node looks for expired uploads (0s = never). */
    cleanup_interval: Duration('10m'),
  }),
  /** Switchboard: signed HTTP webhooks for connection, subscription and channel occupancy events (docs/WEBHOOKS.md). */
  webhooks: Obj({
    /** HMAC-SHA256 key for the X-Switchboard-Signature header of every delivery ('' = the endpoint's own secret must be set). */
    secret: Str(''),
    endpoints: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          url: Type.String({ minLength: 1 }),
          events: Type.Array(
            Type.Union(
              ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'].map((e) => Type.Literal(e)),
            ),
            { default: [] },
          ),
          /** Channel events only for these namespaces ('' = channels without a namespace); empty = every channel. */
          namespaces: Type.Array(Type.String(), { default: [] }),
          /** This endpoint's own signing key (default: webhooks.secret). */
          secret: Str(''),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    /** Per delivery attempt. */
    timeout: Duration('5s'),
    max_attempts: Type.Integer({ default: 10, minimum: 1 }),
    retry_min_delay: Duration('500ms'),
    retry_max_delay: Duration('30s'),
    /** Undelivered events the outbox keeps (cluster-wide on Redis); events beyond are dropped and counted. */
    outbox_max_size: Type.Integer({ default: 100000, minimum: 1 }),
    /** Events on their way into the outbox from this node; beyond, dropped and counted (nothing waits for the outbox). */
    max_pending_appends: Type.Integer({ default: 10000, minimum: 1 }),
    /** Deliveries in flight from this node. */
    concurrency: Type.Integer({ default: 16, minimum: 1 }),
    /** How often a node looks for events in the outbox when it queued none itself. */
    poll_interval: Duration('500ms'),
    /** An event claimed by a node and untouched this long (the node died) is delivered by another. */
    reclaim_after: Duration('60s'),
  }),
  /** Traces over OTLP/HTTP, exporter set by the standard OTEL_* variables (docs/TRACING.md); Centrifugo v6 key names. */
  opentelemetry: Obj({
    enabled: Bool(false),
    /** Trace HTTP server API calls. */
    api: Bool(true),
    /** Switchboard: trace client commands. */
    client: Bool(true),
  }),
  /** Shared poll subscriptions: the key that signs track signatures (docs/SHARED-POLL.md). */
  shared_poll: Obj({
    hmac_secret_key: Str(''),
    hmac_previous_secret_key: Str(''),
    /** Unix seconds: signatures issued after this must use hmac_secret_key (0 = no limit). */
    hmac_previous_secret_key_valid_until: Int(0),
    /** Backend refresh calls in flight from one node, over all shared poll channels. */
    concurrency_limit: Type.Integer({ default: 64, minimum: 1 }),
  }),
  /** Switchboard: node:cluster workers for `serve` (0 = one process). */
  workers: Int(0),
  /** Switchboard: collaborative field locks (docs/LOCKS.md). */
  locks: Obj({
    enabled: Bool(false),
    /** Holders of document D are the map channel `<namespace>:D`. */
    namespace: Str('locks'),
    default_ttl_ms: Type.Integer({ default: 10000, minimum: 1 }),
    min_ttl_ms: Type.Integer({ default: 1000, minimum: 1 }),
    max_ttl_ms: Type.Integer({ default: 60000, minimum: 1 }),
    max_per_connection: Int(16),
    max_key_length: Type.Integer({ default: 256, minimum: 3, maximum: 4096 }),
    /** How often each node ends leases whose time is up. */
    sweep_interval_ms: Type.Integer({ default: 250, minimum: 10 }),
  }),
  /** Switchboard: user status in the shape of Centrifugo PRO's (docs/USER-STATUS.md). */
  user_status: Obj({
    enabled: Bool(false),
    expire_s: Type.Integer({ default: 2678400, minimum: 1 }),
    /** At most one activity write per user per node in this time. */
    update_throttle_ms: Int(10000),
    /** How often a node records `online` for its connected users. */
    online_refresh_ms: Type.Integer({ default: 60000, minimum: 100 }),
  }),
});

export type RawConfig = Static<typeof ConfigSchema>;
export type RawNamespace = RawConfig['channel']['namespaces'][number];
