import { Type, type Static, type TSchema } from '@sinclair/typebox';

/*
 * The HTTP server API's map methods (Centrifugo 6.8 map subscriptions:
 * map_publish, map_remove, map_read_state, map_read_stream, map_stats,
 * map_clear), spread into ParamsSchemas / ResultSchemas by schemas.ts.
 */

const Channel = Type.String({ minLength: 1, description: 'Map channel name.' });
const Key = Type.String({ minLength: 1, description: 'Entry key.' });
const Uint = (description: string) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });
const Tags = Type.Optional(
  Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: Type.String(),
    description: 'String tags of the entry (tags filters match them).',
  }),
);
const StreamPosition = Type.Object({
  offset: Type.Optional(Uint('Stream offset.')),
  epoch: Type.Optional(Type.String({ description: 'Stream epoch.' })),
});
const IdempotencyKey = Type.Optional(
  Type.String({
    description: 'A repeated call with the same key (per channel, 5 minutes) changes nothing and returns the first position.',
  }),
);

export const MapParamsSchemas = {
  map_publish: Type.Object(
    {
      channel: Channel,
      key: Key,
      data: Type.Optional(Type.Unknown({ description: 'The entry value (any JSON). Either data or b64data is required.' })),
      b64data: Type.Optional(Type.String({ description: 'Base64 of the value (JSON text or binary, as publish).' })),
      key_ttl: Type.Optional(
        Type.Union([Type.String(), Type.Number({ minimum: 0 })], {
          description:
            'Switchboard: how long until the entry lapses unless published again, a duration ("30s", "500ms") or seconds (default the namespace\'s map.key_ttl; 0 = never).',
        }),
      ),
      key_mode: Type.Optional(
        Type.Unsafe<'if_new' | 'if_exists'>({
          type: 'string',
          enum: ['if_new', 'if_exists'],
          description: 'if_new: only when the key is absent; if_exists: only when it is present (else suppressed).',
        }),
      ),
      tags: Tags,
      idempotency_key: IdempotencyKey,
      delta: Type.Optional(
        Type.Boolean({
          description: "May go out as a fossil delta against the key's previous value (default the namespace's delta_publish).",
        }),
      ),
    },
    { description: 'Set a key of a map channel (subscribers get the change live).' },
  ),
  map_remove: Type.Object(
    { channel: Channel, key: Key, idempotency_key: IdempotencyKey },
    { description: 'Remove a key of a map channel.' },
  ),
  map_read_state: Type.Object(
    {
      channel: Channel,
      cursor: Type.Optional(Type.String({ description: 'The cursor of the page before ("" or absent: the first page).' })),
      limit: Type.Optional(Uint("Entries per page (default the namespace's map.default_page_size, at most max_page_size).")),
      key: Type.Optional(Type.String({ description: 'Only this key.' })),
    },
    { description: "One page of a map channel's entries." },
  ),
  map_read_stream: Type.Object(
    {
      channel: Channel,
      since: Type.Optional(StreamPosition),
      limit: Type.Optional(Uint('Changes to return: 0 = only the stream position; absent = all kept.')),
    },
    { description: "A map channel's change stream (durable and persistent maps); 112 when `since` is no longer in it." },
  ),
  map_stats: Type.Object({ channel: Channel }, { description: 'How many keys a map channel holds.' }),
  map_clear: Type.Object(
    { channel: Channel },
    { description: "Drop a map channel's entries and stream (the next change starts a new epoch)." },
  ),
} satisfies Record<string, TSchema>;

export type MapApiMethod = keyof typeof MapParamsSchemas;
export type MapParamsOf<M extends MapApiMethod> = Static<(typeof MapParamsSchemas)[M]>;

const UpdateResult = Type.Object({
  offset: Uint('Offset of the change (when suppressed: the channel top).'),
  epoch: Type.String({ description: 'Epoch of the channel stream.' }),
  suppressed: Type.Optional(Type.Boolean({ description: 'Nothing changed (see suppress_reason).' })),
  suppress_reason: Type.Optional(Type.String({ description: 'idempotency, key_exists or key_not_found.' })),
});
const Entry = Type.Object({
  key: Type.String(),
  data: Type.Unknown({ description: 'The value (null for a removal).' }),
  offset: Uint('Offset of the last change of the key.'),
  removed: Type.Optional(Type.Boolean({ description: 'A removal (stream only).' })),
  info: Type.Optional(
    Type.Object({
      user: Type.String(),
      client: Type.String(),
      conn_info: Type.Optional(Type.Unknown()),
      chan_info: Type.Optional(Type.Unknown()),
    }),
  ),
  tags: Tags,
  time: Type.Optional(Uint('Milliseconds since epoch of the change.')),
});

export const MapResultSchemas = {
  map_publish: UpdateResult,
  map_remove: UpdateResult,
  map_read_state: Type.Object({
    publications: Type.Array(Entry),
    cursor: Type.String({ description: '"" on the last page.' }),
    offset: Uint('Stream top offset when the page was read.'),
    epoch: Type.String(),
  }),
  map_read_stream: Type.Object({ publications: Type.Array(Entry), offset: Uint('Stream top offset.'), epoch: Type.String() }),
  map_stats: Type.Object({ num_keys: Uint('Keys in the channel.') }),
  map_clear: Type.Object({}),
} satisfies Record<MapApiMethod, TSchema>;
