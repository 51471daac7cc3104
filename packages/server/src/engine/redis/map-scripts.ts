/**
 * Lua scripts of map channels (a key → value state per channel, with an
 * optional stream of its changes). One script per mutation: the state
 * change, the offset, the stream append, the per-key expiry and the
 * PUBLISH to other nodes happen atomically, in one round trip.
 *
 * Keys of one channel share its hash tag (`{channel}`), so every script
 * runs on Redis Cluster. The expiry registry (which channels have keys that
 * expire, and when) is a pair of keys of its own slot per shard; it is
 * written by separate scripts that never touch a channel's keys.
 *
 * A map channel's stream and meta are the channel's ordinary ones
 * (`s.{ch}`, `m.{ch}`): offsets, epochs, replica_wait and recovery work as
 * for any channel. The state is a hash (map key → "<offset> <payload>") and
 * a sorted set of expiry times (map key → unix ms, Redis's clock).
 *
 * Payloads are codec.ts's `<time> <headerLength> <header><data>`; the
 * header of a map publication carries `mk` (the map key) and `rm` (1 for a
 * removal). headerLength counts UTF-16 code units (what JavaScript's
 * `length` counts), so a header built here counts them too.
 */
import { EPOCH } from './scripts.js';

/** Redis's clock in unix ms, as the local `now` (effects replication, so writes may follow). */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Removal payloads built here: the header carries the key, the removal
 * flag, the remover's info (when given) and the removed entry's tags (so
 * tags filters route the removal as they routed the entry).
 */
const REMOVAL = `
local function utf16len(s)
  local _, cont = string.gsub(s, '[\\128-\\191]', '')
  local _, four = string.gsub(s, '[\\240-\\247]', '')
  return #s - cont + four
end
-- The tags in the header of a state value "<offset> <time> <units> <header><data>" (units: UTF-16 code units).
local function tagsOf(value)
  if not value or not string.find(value, '"t":{', 1, true) then return nil end
  local sp0 = string.find(value, ' ', 1, true)
  local sp1 = string.find(value, ' ', sp0 + 1, true)
  local sp2 = string.find(value, ' ', sp1 + 1, true)
  local units = tonumber(string.sub(value, sp1 + 1, sp2 - 1))
  if not units or units == 0 then return nil end
  local i = sp2 + 1
  local n = 0
  while n < units do
    local c = string.byte(value, i)
    if c >= 240 then n = n + 2; i = i + 4
    elseif c >= 224 then n = n + 1; i = i + 3
    elseif c >= 192 then n = n + 1; i = i + 2
    else n = n + 1; i = i + 1 end
  end
  local ok, h = pcall(cjson.decode, string.sub(value, sp2 + 1, i - 1))
  if ok and type(h) == 'table' then return h.t end
  return nil
end
local function removal(now, key, info, tags)
  local h = info or {}
  h.mk = key
  h.rm = 1
  if tags then h.t = tags end
  local header = cjson.encode(h)
  return now .. ' ' .. utf16len(header) .. ' ' .. header
end`;

/**
 * Publish or remove one key.
 * KEYS: stream, meta, idempotency key, state hash, expiry zset, key index zset
 * ARGV: 1 map key, 2 payload (a removal: the remover's info as header JSON, or ""),
 *       3 stream size (0 = no stream), 4 stream key ttl ms (> 0),
 *       5 meta ttl ms (> 0), 6 pub/sub channel, 7 epoch to use when new,
 *       8 idempotent ttl ms, 9 "1" = idempotent, 10 key ttl ms (0 = none),
 *       11 "1" = remove, 12 key mode ("" | "if_new" | "if_exists"),
 *       13 "1" = hold (replica_wait: append only, PUBLISH_HELD sends it),
 *       14 most keys (0 = no limit), 15 "1" = refresh the ttl of a key if_new kept
 * Returns {"offset epoch", status}: 0 applied, 1 idempotent repeat, 2 key
 * exists, 3 key not found, 4 too many keys (2..4: nothing changed, the
 * position is the channel's top).
 */
export const MAP_UPDATE = `
local idem = ARGV[9] == '1'
if idem then
  local prev = redis.call('get', KEYS[3])
  if prev then return {prev, 1} end
end
${NOW}
${REMOVAL}
local key = ARGV[1]
local remove = ARGV[11] == '1'
local epoch = ''
${EPOCH('ARGV[7]', 'ARGV[13]')}
redis.call('hset', KEYS[2], 'o', ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
redis.call('pexpire', KEYS[2], ARGV[5])
local present = redis.call('hexists', KEYS[4], key) == 1
-- A key whose time ran out is gone for a conditional write, whether or not a sweep removed it yet.
local exp = present and redis.call('zscore', KEYS[5], key)
local live = present and not (exp and tonumber(exp) <= now)
local status = 0
if remove and not present then status = 3
elseif ARGV[12] == 'if_new' and live then status = 2
elseif ARGV[12] == 'if_exists' and not live then status = 3
elseif not remove and not present and ARGV[14] ~= '0' and redis.call('hlen', KEYS[4]) >= tonumber(ARGV[14]) then status = 4 end
if status ~= 0 then
  if status == 2 and ARGV[15] == '1' and tonumber(ARGV[10]) > 0 then
    redis.call('zadd', KEYS[5], now + tonumber(ARGV[10]), key)
    redis.call('pexpire', KEYS[5], ARGV[5])
  end
  return {(redis.call('hget', KEYS[2], 's') or '0') .. ' ' .. epoch, status}
end
local payload = ARGV[2]
if remove then
  local info = nil
  if ARGV[2] ~= '' then info = cjson.decode(ARGV[2]) end
  payload = removal(now, key, info, tagsOf(redis.call('hget', KEYS[4], key)))
end
local offset = redis.call('hincrby', KEYS[2], 's', 1)
if ARGV[3] ~= '0' then
  redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[3], offset, 'd', payload)
  redis.call('pexpire', KEYS[1], ARGV[4])
end
if remove then
  redis.call('hdel', KEYS[4], key)
  redis.call('zrem', KEYS[5], key)
  redis.call('zrem', KEYS[6], key)
else
  redis.call('hset', KEYS[4], key, offset .. ' ' .. payload)
  redis.call('zadd', KEYS[6], 0, key)
  local ttl = tonumber(ARGV[10])
  if ttl > 0 then redis.call('zadd', KEYS[5], now + ttl, key) elseif exp then redis.call('zrem', KEYS[5], key) end
end
for i = 4, 6 do redis.call('pexpire', KEYS[i], ARGV[5]) end
if ARGV[13] ~= '1' then
  redis.call('publish', ARGV[6], offset .. ' ' .. epoch .. ' ' .. payload)
  redis.call('hset', KEYS[2], 'p', offset)
end
local res = offset .. ' ' .. epoch
if idem then redis.call('set', KEYS[3], res, 'PX', ARGV[8]) end
return {res, 0}
`;

/**
 * Removes the channel's keys whose time ran out (by Redis's clock), each as
 * a removal with its own offset, stream entry and PUBLISH, exactly as
 * MAP_UPDATE would. Atomic, and it looks at the expiry set itself: when
 * several nodes sweep one channel at once, each expired key is removed (and
 * its removal sent) once.
 * KEYS: stream, meta, state hash, expiry zset, key index zset
 * ARGV: 1 most keys to remove, 2 pub/sub channel, 3 epoch to use when new,
 *       4 "1" = replica_wait (hold what goes to a stream), 5 meta ttl ms when
 *       the meta is gone (the options with it)
 * Returns {removed, next expiry ms (-1 = none left), "top offset epoch", "1" = held}.
 */
export const MAP_EXPIRE = `
${NOW}
${REMOVAL}
local expired = redis.call('zrangebyscore', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local offset = 0
local epoch = ''
local hold = false
if #expired > 0 then
  local o = redis.call('hget', KEYS[2], 'o') or ('0 ' .. ARGV[5] .. ' ' .. ARGV[5])
  local osize, ottl, ometa = string.match(o, '^(%d+) (%d+) (%d+)$')
  hold = ARGV[4] == '1' and osize ~= '0'
  ${EPOCH('ARGV[3]', "(hold and '1' or '0')")}
  for _, key in ipairs(expired) do
    offset = redis.call('hincrby', KEYS[2], 's', 1)
    local payload = removal(now, key, nil, tagsOf(redis.call('hget', KEYS[3], key)))
    if osize ~= '0' then
      redis.call('xadd', KEYS[1], 'MAXLEN', osize, offset, 'd', payload)
      redis.call('pexpire', KEYS[1], ottl)
    end
    if not hold then
      redis.call('publish', ARGV[2], offset .. ' ' .. epoch .. ' ' .. payload)
      redis.call('hset', KEYS[2], 'p', offset)
    end
    redis.call('hdel', KEYS[3], key)
    redis.call('zrem', KEYS[4], key)
    redis.call('zrem', KEYS[5], key)
  end
  redis.call('pexpire', KEYS[2], ometa)
end
local nxt = redis.call('zrange', KEYS[4], 0, 0, 'WITHSCORES')
return {#expired, nxt[2] or '-1', offset .. ' ' .. epoch, hold and '1' or '0'}
`;

/**
 * One page of the state (in key order), and the stream position it is
 * consistent with: every change after that position has a greater offset.
 * Keys whose time ran out are left out, swept or not.
 * KEYS: stream, meta, state hash, expiry zset, key index zset
 * ARGV: 1 cursor (the last key of the page before; "" = first page), 2 limit,
 *       3 meta ttl ms (> 0), 4 epoch to use when new, 5 "1" = only what was
 *       published (replica_wait), 6 "1" = only the key ARGV[7]
 * Returns {offset, epoch, next cursor ("" = last page), [key, value, ...]}.
 */
export const MAP_STATE = `
${NOW}
local epoch = ''
${EPOCH('ARGV[4]', 'ARGV[5]')}
redis.call('pexpire', KEYS[2], ARGV[3])
local offset = redis.call('hget', KEYS[2], ARGV[5] == '1' and 'p' or 's') or '0'
local keys
local nextc = ''
if ARGV[6] == '1' then
  keys = {ARGV[7]}
else
  local limit = tonumber(ARGV[2])
  local from = ARGV[1] == '' and '-' or ('(' .. ARGV[1])
  keys = redis.call('zrangebylex', KEYS[5], from, '+', 'LIMIT', 0, limit + 1)
  if #keys > limit then
    keys[#keys] = nil
    nextc = keys[#keys]
  end
end
local out = {}
if #keys > 0 then
  local values = redis.call('hmget', KEYS[3], unpack(keys))
  for i, k in ipairs(keys) do
    local exp = redis.call('zscore', KEYS[4], k)
    if values[i] and not (exp and tonumber(exp) <= now) then
      out[#out + 1] = k
      out[#out + 1] = values[i]
    end
  end
end
return {offset, epoch, nextc, out}
`;

/**
 * Expiry registry, per shard: which channels have keys that expire, and
 * the earliest time. A zset (channel → ms) and a hash (channel →
 * registration count): a sweep that found nothing left drops a channel
 * only if nobody registered it meanwhile.
 */

/** KEYS: zset, hash; ARGV: channel, expiry ms. Keeps the earlier time. */
export const MAP_REGISTER = `
redis.call('zadd', KEYS[1], 'LT', ARGV[2], ARGV[1])
redis.call('hincrby', KEYS[2], ARGV[1], 1)
return 1
`;

/**
 * Hands out channels due for a sweep, pushing each one's time a lease
 * ahead (another node retries it then if this one dies meanwhile).
 * KEYS: zset, hash; ARGV: most channels, lease ms.
 * Returns [channel, registration count, ...].
 */
export const MAP_CLAIM = `
${NOW}
local due = redis.call('zrangebyscore', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, ch in ipairs(due) do
  redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ch)
  out[#out + 1] = ch
  out[#out + 1] = redis.call('hget', KEYS[2], ch) or '0'
end
return out
`;

/**
 * After a sweep: the channel's next expiry (-1 = none left). When nobody
 * registered the channel since the claim, the time is set as is (or the
 * channel dropped); else only an earlier time is kept.
 * KEYS: zset, hash; ARGV: channel, registration count at the claim, next ms.
 */
export const MAP_RESCHEDULE = `
local same = (redis.call('hget', KEYS[2], ARGV[1]) or '0') == ARGV[2]
local nxt = tonumber(ARGV[3])
if same then
  if nxt < 0 then
    redis.call('zrem', KEYS[1], ARGV[1])
    redis.call('hdel', KEYS[2], ARGV[1])
  else
    redis.call('zadd', KEYS[1], nxt, ARGV[1])
  end
elseif nxt >= 0 then
  redis.call('zadd', KEYS[1], 'LT', nxt, ARGV[1])
end
return 1
`;
