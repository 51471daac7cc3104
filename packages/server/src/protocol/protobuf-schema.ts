import protobuf from 'protobufjs/light.js';

/*
 * The client protocol's Protobuf messages (package `centrifugal.centrifuge.protocol`),
 * the subset this server reads and writes, with the field numbers and types of
 * the schema the `centrifuge` SDK bundles (its generated code is the last word;
 * centrifugal/protocol definitions/client.proto is the source). Fields we never
 * send or read are left out: protobuf skips unknown fields on decode.
 */
const f = (id: number, type: string, rule?: 'repeated'): protobuf.IField => (rule ? { id, type, rule } : { id, type });
const map = (id: number, type: string): protobuf.IMapField => ({ id, keyType: 'string', type });

const messages: Record<string, Record<string, protobuf.IField>> = {
  Error: { code: f(1, 'uint32'), message: f(2, 'string'), temporary: f(3, 'bool') },
  Command: {
    id: f(1, 'uint32'),
    connect: f(4, 'ConnectRequest'),
    subscribe: f(5, 'SubscribeRequest'),
    unsubscribe: f(6, 'UnsubscribeRequest'),
    publish: f(7, 'PublishRequest'),
    presence: f(8, 'PresenceRequest'),
    presence_stats: f(9, 'PresenceStatsRequest'),
    history: f(10, 'HistoryRequest'),
    ping: f(11, 'Empty'),
    send: f(12, 'SendRequest'),
    rpc: f(13, 'RPCRequest'),
    refresh: f(14, 'RefreshRequest'),
    sub_refresh: f(15, 'SubRefreshRequest'),
  },
  Reply: {
    id: f(1, 'uint32'),
    error: f(2, 'Error'),
    push: f(4, 'Push'),
    connect: f(5, 'ConnectResult'),
    subscribe: f(6, 'SubscribeResult'),
    unsubscribe: f(7, 'Empty'),
    publish: f(8, 'Empty'),
    presence: f(9, 'PresenceResult'),
    presence_stats: f(10, 'PresenceStatsResult'),
    history: f(11, 'HistoryResult'),
    ping: f(12, 'Empty'),
    rpc: f(13, 'RPCResult'),
    refresh: f(14, 'RefreshResult'),
    sub_refresh: f(15, 'SubRefreshResult'),
  },
  Push: {
    id: f(1, 'int64'),
    channel: f(2, 'string'),
    pub: f(4, 'Publication'),
    join: f(5, 'Join'),
    leave: f(6, 'Leave'),
    unsubscribe: f(7, 'Unsubscribe'),
    message: f(8, 'Message'),
    subscribe: f(9, 'Subscribe'),
    connect: f(10, 'ConnectResult'),
    disconnect: f(11, 'Disconnect'),
    refresh: f(12, 'Refresh'),
  },
  ClientInfo: { user: f(1, 'string'), client: f(2, 'string'), conn_info: f(3, 'bytes'), chan_info: f(4, 'bytes') },
  Publication: { data: f(4, 'bytes'), info: f(5, 'ClientInfo'), offset: f(6, 'uint64'), tags: map(7, 'string'), delta: f(8, 'bool'), time: f(9, 'int64') },
  Join: { info: f(1, 'ClientInfo') },
  Leave: { info: f(1, 'ClientInfo') },
  Unsubscribe: { code: f(2, 'uint32'), reason: f(3, 'string') },
  Subscribe: { recoverable: f(1, 'bool'), epoch: f(4, 'string'), offset: f(5, 'uint64'), positioned: f(6, 'bool'), data: f(7, 'bytes') },
  Message: { data: f(1, 'bytes') },
  Disconnect: { code: f(1, 'uint32'), reason: f(2, 'string'), reconnect: f(3, 'bool') },
  Refresh: { expires: f(1, 'bool'), ttl: f(2, 'uint32') },
  ConnectRequest: {
    token: f(1, 'string'),
    data: f(2, 'bytes'),
    subs: map(3, 'SubscribeRequest'),
    name: f(4, 'string'),
    version: f(5, 'string'),
  },
  ConnectResult: {
    client: f(1, 'string'),
    version: f(2, 'string'),
    expires: f(3, 'bool'),
    ttl: f(4, 'uint32'),
    data: f(5, 'bytes'),
    subs: map(6, 'SubscribeResult'),
    ping: f(7, 'uint32'),
    pong: f(8, 'bool'),
    session: f(9, 'string'),
    node: f(10, 'string'),
    time: f(11, 'int64'),
  },
  RefreshRequest: { token: f(1, 'string') },
  RefreshResult: { client: f(1, 'string'), version: f(2, 'string'), expires: f(3, 'bool'), ttl: f(4, 'uint32') },
  SubscribeRequest: {
    channel: f(1, 'string'),
    token: f(2, 'string'),
    recover: f(3, 'bool'),
    epoch: f(6, 'string'),
    offset: f(7, 'uint64'),
    data: f(8, 'bytes'),
    positioned: f(9, 'bool'),
    recoverable: f(10, 'bool'),
    join_leave: f(11, 'bool'),
    delta: f(12, 'string'),
    tf: f(13, 'FilterNode'),
    flag: f(14, 'int64'),
  },
  FilterNode: {
    op: f(1, 'string'),
    key: f(2, 'string'),
    cmp: f(3, 'string'),
    val: f(4, 'string'),
    vals: f(5, 'string', 'repeated'),
    nodes: f(6, 'FilterNode', 'repeated'),
  },
  SubscribeResult: {
    expires: f(1, 'bool'),
    ttl: f(2, 'uint32'),
    recoverable: f(3, 'bool'),
    epoch: f(6, 'string'),
    publications: f(7, 'Publication', 'repeated'),
    recovered: f(8, 'bool'),
    offset: f(9, 'uint64'),
    positioned: f(10, 'bool'),
    data: f(11, 'bytes'),
    was_recovering: f(12, 'bool'),
    delta: f(13, 'bool'),
    id: f(14, 'int64'),
  },
  SubRefreshRequest: { channel: f(1, 'string'), token: f(2, 'string') },
  SubRefreshResult: { expires: f(1, 'bool'), ttl: f(2, 'uint32') },
  UnsubscribeRequest: { channel: f(1, 'string') },
  PublishRequest: { channel: f(1, 'string'), data: f(2, 'bytes') },
  PresenceRequest: { channel: f(1, 'string') },
  PresenceResult: { presence: map(1, 'ClientInfo') },
  PresenceStatsRequest: { channel: f(1, 'string') },
  PresenceStatsResult: { num_clients: f(1, 'uint32'), num_users: f(2, 'uint32') },
  StreamPosition: { offset: f(1, 'uint64'), epoch: f(2, 'string') },
  HistoryRequest: { channel: f(1, 'string'), limit: f(7, 'int32'), since: f(8, 'StreamPosition'), reverse: f(9, 'bool') },
  HistoryResult: { publications: f(1, 'Publication', 'repeated'), epoch: f(2, 'string'), offset: f(3, 'uint64') },
  RPCRequest: { data: f(1, 'bytes'), method: f(2, 'string') },
  RPCResult: { data: f(1, 'bytes') },
  SendRequest: { data: f(1, 'bytes') },
  Empty: {},
};

const nested: Record<string, protobuf.IType> = {};
for (const [name, fields] of Object.entries(messages)) nested[name] = { fields };

const root = protobuf.Root.fromJSON({ nested });

export const CommandType = root.lookupType('Command');
export const ReplyType = root.lookupType('Reply');
