-- wr_join.lua: a shopper joins the waiting room (create = 1) or asks where
-- they stand (create = 0). Joining again keeps the place.
-- KEYS: 1 queue ZSET user->arrival score, 2 pre SET (RANDOM pre-queue),
--       3 seq STRING arrival counter, 4 seen ZSET user->last seen (ms),
--       5 stats HASH, 6 admitted ZSET user->admission expiry (ms),
--       7 events STRING event sequence
-- ARGV: 1 userId, 2 now (ms), 3 pre-queue now (1/0), 4 create (1/0),
--       5 seen until (ms): now for a poll, later for a live socket
-- Reply: {"ADMITTED", expiresAtMs, eventSeq} | {"PREQUEUED", preQueueSize, eventSeq}
--      | {"QUEUED", score, position, queueLength, eventSeq} | {"NONE", eventSeq}
local queue, pre, seq, seen, stats, admitted, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local user, now, prequeue, create, seen_until = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', ARGV[4] == '1', ARGV[5]
local ev = tonumber(redis.call('GET', events) or '0')

local exp = redis.call('ZSCORE', admitted, user)
if exp and tonumber(exp) > now then return { 'ADMITTED', exp, ev } end

local score = redis.call('ZSCORE', queue, user)
if not score then
  if redis.call('SISMEMBER', pre, user) == 1 then
    redis.call('ZADD', seen, seen_until, user)
    return { 'PREQUEUED', redis.call('SCARD', pre), ev }
  end
  if not create then return { 'NONE', ev } end
  redis.call('HINCRBY', stats, 'joined', 1)
  redis.call('ZADD', seen, seen_until, user)
  if prequeue then
    redis.call('SADD', pre, user)
    return { 'PREQUEUED', redis.call('SCARD', pre), ev }
  end
  score = redis.call('INCR', seq)
  redis.call('ZADD', queue, score, user)
else
  redis.call('ZADD', seen, seen_until, user)
end
return { 'QUEUED', tostring(score), redis.call('ZRANK', queue, user) + 1, redis.call('ZCARD', queue), ev }
