/**
 * Lua scripts: each engine operation that touches several keys is one
 * script, so it is atomic and costs one round trip (EVALSHA).
 *
 * Keys of one channel share a hash tag (`{channel}`) so the scripts also
 * run on Redis Cluster.
 */

/**
 * Publish: idempotency check, offset increment, epoch, history append and
 * trim, expiries and PUBLISH, atomically.
 * KEYS: stream, meta, idempotency key ("" = none)
 * ARGV: payload, history size (0 = no history), history ttl ms, meta ttl ms (> 0),
 *       pub/sub channel, epoch to use when the stream is new, idempotent ttl ms
 * Returns "offset epoch" and 1 when the idempotency key matched.
 */
export const PUBLISH = `
if KEYS[3] ~= '' then
  local prev = redis.call('get', KEYS[3])
  if prev then return {prev, 1} end
end
local offset = 0
local epoch = ''
if ARGV[2] ~= '0' then
  epoch = redis.call('hget', KEYS[2], 'e')
  if not epoch then
    epoch = ARGV[6]
    redis.call('hset', KEYS[2], 'e', epoch)
    redis.call('del', KEYS[1])
  end
  offset = redis.call('hincrby', KEYS[2], 's', 1)
  redis.call('pexpire', KEYS[2], ARGV[4])
  redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], offset, 'd', ARGV[1])
  redis.call('pexpire', KEYS[1], ARGV[3])
end
redis.call('publish', ARGV[5], offset .. ' ' .. epoch .. ' ' .. ARGV[1])
local res = offset .. ' ' .. epoch
if KEYS[3] ~= '' then redis.call('set', KEYS[3], res, 'PX', ARGV[7]) end
return {res, 0}
`;

/**
 * History: the stream position (creating the epoch, so a position seen
 * before the first publication stays valid) and publications after an
 * offset. The meta always gets a TTL: a read of any channel name must not
 * leave a key behind for ever.
 * KEYS: stream, meta
 * ARGV: meta ttl ms (> 0), epoch to use when the stream is new, limit (-1 = all,
 *       0 = position only), reverse ("1"), since offset ("" = from the start),
 *       since epoch
 * Returns {offset, epoch, entries}
 */
export const HISTORY = `
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('hset', KEYS[2], 'e', epoch)
  redis.call('del', KEYS[1])
end
redis.call('pexpire', KEYS[2], ARGV[1])
local offset = redis.call('hget', KEYS[2], 's') or '0'
local limit = tonumber(ARGV[3])
if limit == 0 then return {offset, epoch, {}} end
if ARGV[5] ~= '' and ARGV[6] ~= epoch then return {offset, epoch, {}} end
local from = '-'
if ARGV[5] ~= '' then from = tostring(tonumber(ARGV[5]) + 1) end
local entries
if ARGV[4] == '1' then
  if limit > 0 then entries = redis.call('xrevrange', KEYS[1], '+', from, 'COUNT', limit)
  else entries = redis.call('xrevrange', KEYS[1], '+', from) end
else
  if limit > 0 then entries = redis.call('xrange', KEYS[1], from, '+', 'COUNT', limit)
  else entries = redis.call('xrange', KEYS[1], from, '+') end
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
