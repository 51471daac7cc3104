/**
 * Lua scripts: each engine operation that touches several keys is one
 * script, so it is atomic and costs one round trip (EVALSHA).
 *
 * Keys of one channel share a hash tag (`{channel}`) so the scripts also
 * run on Redis Cluster.
 */

/**
 * The stream's epoch, made anew when the meta is gone (the stream expired or
 * Redis lost its data) or when the master that serves it is not the one
 * that wrote it: a replica promoted by a failover, or a restart from disk,
 * may have lost the stream's tail, and an offset must never be handed out
 * twice with different data. The master is told by its replication id
 * (INFO replication), which changes on every promotion and restart. With
 * engine.redis.replica_wait (`hold`) nothing is visible before a replica
 * has it, so a promotion keeps the epoch.
 * KEYS[1] stream, KEYS[2] meta; `newEpoch` is the ARGV holding the epoch to use;
 * sets the caller's local `epoch`.
 */
export const EPOCH = (newEpoch: string, hold: string): string => `
local rid = string.match(redis.call('info', 'replication'), 'master_replid:(%x+)') or ''
local meta = redis.call('hmget', KEYS[2], 'e', 'r')
epoch = meta[1]
if (not epoch) or (${hold} ~= '1' and meta[2] ~= rid) then
  epoch = ${newEpoch}
  redis.call('hset', KEYS[2], 'e', epoch, 'r', rid, 'p', redis.call('hget', KEYS[2], 's') or '0')
  redis.call('del', KEYS[1])
end`;

/**
 * Publish: idempotency check, offset increment, epoch, history append and
 * trim, expiries and PUBLISH, atomically. Every key is in the channel's
 * hash slot, so it runs on Redis Cluster.
 * KEYS: stream, meta, idempotency key (used only when ARGV[8] is "1")
 * ARGV: payload, history size (0 = no history), history ttl ms, meta ttl ms (> 0),
 *       pub/sub channel ("" = append only: another broker sends it), epoch to use when the stream is new, idempotent ttl ms,
 *       "1" = idempotent, "1" = hold: append only, PUBLISH_HELD sends it once
 *       a replica has it (engine.redis.replica_wait)
 * Returns "offset epoch" and 1 when the idempotency key matched.
 */
export const PUBLISH = `
local idem = ARGV[8] == '1'
if idem then
  local prev = redis.call('get', KEYS[3])
  if prev then return {prev, 1} end
end
local offset = 0
local epoch = ''
if ARGV[2] ~= '0' then
  ${EPOCH('ARGV[6]', 'ARGV[9]')}
  offset = redis.call('hincrby', KEYS[2], 's', 1)
  redis.call('pexpire', KEYS[2], ARGV[4])
  redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], offset, 'd', ARGV[1])
  redis.call('pexpire', KEYS[1], ARGV[3])
end
if ARGV[5] ~= '' and (ARGV[9] ~= '1' or offset == 0) then
  redis.call('publish', ARGV[5], offset .. ' ' .. epoch .. ' ' .. ARGV[1])
  if offset > 0 then redis.call('hset', KEYS[2], 'p', offset) end
end
local res = offset .. ' ' .. epoch
if idem then redis.call('set', KEYS[3], res, 'PX', ARGV[7]) end
return {res, 0}
`;

/**
 * With engine.redis.replica_wait, after WAIT said a replica has the
 * publication: PUBLISH every held publication up to it, in offset order.
 * Replication is ordered, so whatever was appended before it is on the
 * replica too; whichever node gets here first sends them all, once.
 * KEYS: stream, meta; ARGV: pub/sub channel, offset, epoch
 * Returns the offset published up to.
 */
export const PUBLISH_HELD = `
local meta = redis.call('hmget', KEYS[2], 'e', 'p')
if meta[1] ~= ARGV[3] then return -1 end
local done = tonumber(meta[2] or '0')
local upto = tonumber(ARGV[2])
if upto <= done then return done end
local entries = redis.call('xrange', KEYS[1], tostring(done + 1), tostring(upto))
for _, e in ipairs(entries) do
  local off = string.match(e[1], '^(%d+)')
  redis.call('publish', ARGV[1], off .. ' ' .. meta[1] .. ' ' .. e[2][2])
end
redis.call('hset', KEYS[2], 'p', upto)
return upto
`;

/**
 * History: the stream position (creating the epoch, so a position seen
 * before the first publication stays valid) and publications after an
 * offset. The meta always gets a TTL: a read of any channel name must not
 * leave a key behind for ever.
 * KEYS: stream, meta
 * ARGV: meta ttl ms (> 0), epoch to use when the stream is new, limit (-1 = all,
 *       0 = position only), reverse ("1"), since offset ("" = from the start),
 *       since epoch, "1" = only what was published (engine.redis.replica_wait)
 * Returns {offset, epoch, entries}
 */
export const HISTORY = `
local epoch
${EPOCH('ARGV[2]', 'ARGV[7]')}
redis.call('pexpire', KEYS[2], ARGV[1])
local offset = redis.call('hget', KEYS[2], 's') or '0'
if ARGV[7] == '1' then
  local appended = tonumber(offset)
  offset = redis.call('hget', KEYS[2], 'p') or '0'
  -- A failover can lose the record of the last PUBLISH_HELD but not what it
  -- sent (WAIT confirmed it): a subscriber that got it is up to date, not ahead.
  if ARGV[5] ~= '' and ARGV[6] == epoch and tonumber(ARGV[5]) > tonumber(offset) and tonumber(ARGV[5]) <= appended then
    offset = ARGV[5]
  end
end
local limit = tonumber(ARGV[3])
if limit == 0 then return {offset, epoch, {}} end
if ARGV[5] ~= '' and ARGV[6] ~= epoch then return {offset, epoch, {}} end
local from = '-'
if ARGV[5] ~= '' then from = tostring(tonumber(ARGV[5]) + 1) end
local to = '+'
if ARGV[7] == '1' then to = offset end
if tonumber(from) and tonumber(from) > tonumber(offset) then return {offset, epoch, {}} end
local entries
if ARGV[4] == '1' then
  if limit > 0 then entries = redis.call('xrevrange', KEYS[1], to, from, 'COUNT', limit)
  else entries = redis.call('xrevrange', KEYS[1], to, from) end
else
  if limit > 0 then entries = redis.call('xrange', KEYS[1], from, to, 'COUNT', limit)
  else entries = redis.call('xrange', KEYS[1], from, to) end
end
return {offset, epoch, entries}
`;

/**
 * Presence add/refresh of several entries of one channel.
 * KEYS: hash (client → info), zset (client → expiry ms)
 * ARGV: expiry ms, key ttl ms, then client, info pairs
 */
export const PRESENCE_ADD = `
for i = 3, #ARGV, 2 do
  redis.call('zadd', KEYS[2], ARGV[1], ARGV[i])
  redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('pexpire', KEYS[2], ARGV[2])
return 1
`;

/** KEYS: hash, zset; ARGV: client */
export const PRESENCE_REMOVE = `
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1
`;

/** Lua shared by the TTL'd hash+zset pairs (presence, node registry): KEYS[1] hash, KEYS[2] zset of expiries, ARGV[1] now ms. */
const DROP_EXPIRED_THEN_LIST = `local expired = redis.call('zrangebyscore', KEYS[2], '-inf', ARGV[1])
if #expired > 0 then
  for i = 1, #expired, 1000 do
    redis.call('hdel', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
  end
  redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[1])
end
return redis.call('hvals', KEYS[1])`;

/**
 * Live presence entries: drops the expired ones first.
 * KEYS: hash, zset; ARGV: now ms. Returns the hash's values.
 */
export const PRESENCE_GET = `
${DROP_EXPIRED_THEN_LIST}
`;

/**
 * Node registry: announce this node and list the live ones.
 * KEYS: hash (uid → info JSON), zset (uid → expiry ms)
 * ARGV: now ms, uid ("" = only list), info JSON, expiry ms
 */
export const NODES = `
if ARGV[2] ~= '' then
  redis.call('hset', KEYS[1], ARGV[2], ARGV[3])
  redis.call('zadd', KEYS[2], ARGV[4], ARGV[2])
end
${DROP_EXPIRED_THEN_LIST}
`;

/** KEYS: hash, zset; ARGV: uid */
export const NODE_REMOVE = `
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1
`;

/**
 * A token bucket shared by every node (per-user limits across the cluster).
 * Time comes from Redis, so nodes' clocks do not matter.
 * KEYS: bucket
 * ARGV: tokens per second, burst
 * Returns 1 when a token was taken, 0 when the bucket is empty.
 */
export const TAKE_TOKEN = `
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('hmget', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('hset', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('pexpire', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return ok
`;

/**
 * A revocation: keeps the larger of the stored and the given value, and the
 * later of the two expiries.
 * KEYS: key; ARGV: value, ttl ms
 */
export const REVOKE = `
local cur = tonumber(redis.call('get', KEYS[1]) or '0') or 0
local v = tonumber(ARGV[1])
if cur > v then v = cur end
local ttl = tonumber(ARGV[2])
local left = redis.call('pttl', KEYS[1])
if left > ttl then ttl = left end
redis.call('set', KEYS[1], string.format('%d', v), 'PX', ttl)
return 1
`;
