-- wr_join.lua (after wr_opening.lua): a shopper joins the waiting room
-- (create = 1) or asks where they stand (create = 0). Joining again keeps
-- the place. The pre-queue is decided here by Redis TIME against the room's
-- opensAt, never by a node's clock: a join after the opening never enters
-- the pre-queue, and the first join after it begins the opening (so it
-- and everyone after it queue behind the lottery block).
-- KEYS: 1 queue ZSET user->arrival score, 2 pre SET (RANDOM pre-queue),
--       3 seq STRING arrival counter, 4 seen ZSET user->last seen (ms),
--       5 stats HASH, 6 admitted ZSET user->admission expiry (ms),
--       7 events STRING event sequence, 8 config HASH, 9 entrants SET
--       10.. the spent-challenge keys of the shoppers who spend one
-- ARGV: per shopper, six: userId, now (ms, the node's clock, for admission
--       expiry), create (1/0), seen until (ms: now for a poll, later for a
--       live socket), spend (the index in KEYS of the shopper's solved
--       challenge, 0 for none), spend until (ms: the challenge's expiry).
--       A node sends the joins that arrived while its previous call was in
--       flight as one call (src/waitroom/batch.rs): one script, one opening
--       check, for many shoppers.
-- A challenge is spent in the same step as the join that uses it, and only
-- by a join that makes a new place: a join that fails, or one by a shopper
-- already in the room, leaves it unspent, so a retry of the same solution
-- is accepted. A join with a spent challenge makes no place ({"NONE"}).
-- Reply: one answer per shopper, in order:
--        {"ADMITTED", expiresAtMs, eventSeq, queueLength} | {"PREQUEUED", preQueueSize, eventSeq}
--      | {"QUEUED", score, position, queueLength, eventSeq} | {"NONE", eventSeq}
local queue, pre, seq, seen, stats, admitted, events, config, entrants =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local ev = tonumber(redis.call('GET', events) or '0')

-- Once for the whole call: a join never changes the opening's moment, and
-- beginning it is idempotent.
local opens, key, opened_for, mode = opening_of(config)
local before_opening = opens ~= nil and shared_now() < opens
if not before_opening then begin_opening(pre, seq, config, entrants, key, opened_for) end

local function join(user, now, create, seen_until, spend, spend_until)
  local exp = redis.call('ZSCORE', admitted, user)
  if exp and tonumber(exp) > now then return { 'ADMITTED', exp, ev, redis.call('ZCARD', queue) } end

  local score = redis.call('ZSCORE', queue, user)
  if not score then
    if redis.call('SISMEMBER', pre, user) == 1 then
      redis.call('ZADD', seen, seen_until, user)
      if before_opening or redis.call('SISMEMBER', entrants, user) == 1 then
        -- Waiting for the lottery, or for the leader to place this entrant.
        return { 'PREQUEUED', redis.call('SCARD', pre), ev }
      end
      -- A straggler the opening did not see: placed by its own join, behind
      -- the lottery block.
      redis.call('SREM', pre, user)
      score = redis.call('INCR', seq)
      redis.call('ZADD', queue, score, user)
    else
      if spend and redis.call('EXISTS', spend) == 1 then create = false end
      if not create then return { 'NONE', ev } end
      if spend then redis.call('SET', spend, user, 'PXAT', spend_until) end
      redis.call('HINCRBY', stats, 'joined', 1)
      redis.call('ZADD', seen, seen_until, user)
      if before_opening and mode == 'RANDOM' then
        redis.call('SADD', pre, user)
        return { 'PREQUEUED', redis.call('SCARD', pre), ev }
      end
      score = redis.call('INCR', seq)
      redis.call('ZADD', queue, score, user)
    end
  else
    redis.call('ZADD', seen, seen_until, user)
  end
  return { 'QUEUED', tostring(score), redis.call('ZRANK', queue, user) + 1, redis.call('ZCARD', queue), ev }
end

local out = {}
for i = 1, #ARGV, 6 do
  local spend = tonumber(ARGV[i + 4])
  out[#out + 1] = join(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2] == '1', ARGV[i + 3],
    spend > 0 and KEYS[spend] or nil, ARGV[i + 5])
end
return out
