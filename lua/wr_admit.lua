-- wr_admit.lua: one admission tick of the show's leader. Moves up to `max`
-- shoppers from the head of the queue to the admitted set, never past
-- maxActive active shoppers, never while paused or with no seat to sell,
-- and publishes one "tick" event. Its work does not grow with the queue.
-- KEYS: 1 queue, 2 admitted, 3 seen, 4 stats, 5 events, 6 lease, 7 seats
--       (the show's seat-lock hash), 8 config HASH
-- ARGV: 1 lease token, 2 now (ms), 3 max to admit (tokens in hand),
--       4 admission ttl (ms), 5 sellable seats, 6 maxActive, 7 paused (1/0),
--       8 observed rate (per s), 9 channel, 10 "PUBLISH"|"SPUBLISH",
--       11 tick id (unique per tick of a leader), 12 the leader's outlook
--       estimate (JSON; empty: none yet), kept in the config hash and
--       published with the tick
-- Reply: {-1} when the token is not the lease holder's (a stale leader);
--        else {1, admitted, queueLength, active, available, soldOut, eventSeq, userIds...}
-- Run twice with the same tick id (a client retry after a timeout), it
-- admits nobody the second time and publishes nothing.
local queue, admitted, seen, stats, events, lease, seats, config =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
if redis.call('GET', lease) ~= ARGV[1] then return { -1 } end
local now, max, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sellable, max_active, paused = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
local repeated = redis.call('HGET', stats, 'lastTick') == ARGV[11]
redis.call('HSET', stats, 'lastTick', ARGV[11])
-- When the room last admitted (by any leader): a new leader's bucket holds
-- only what refilled since, so a handover never hands out an extra burst.
if not repeated then redis.call('HSET', stats, 'lastTickAt', ARGV[2]) end

-- Admissions past their expiry are no longer active: each lapsed without a
-- purchase (a confirmed order ends its admission before), which the outlook
-- counts as a shopper who bought nothing.
local lapsed = redis.call('ZREMRANGEBYSCORE', admitted, '-inf', now)
if lapsed > 0 then redis.call('HINCRBY', stats, 'walked', lapsed) end
local active = redis.call('ZCARD', admitted)
local available = sellable - redis.call('HLEN', seats)
local sold_out = false
if available <= 0 then
  -- Nothing to sell now; sold out only if every seat is booked, none held.
  sold_out = true
  for _, owner in ipairs(redis.call('HVALS', seats)) do
    if string.sub(owner, 1, 2) ~= 'B:' then sold_out = false; break end
  end
end

local users = {}
local k = 0
if not paused and available > 0 and not repeated then
  k = math.min(max, max_active - active, redis.call('ZCARD', queue))
end
local expires = now + ttl
if k > 0 then
  local popped = redis.call('ZPOPMIN', queue, k)
  for i = 1, #popped, 2 do
    redis.call('ZADD', admitted, expires, popped[i])
    redis.call('ZREM', seen, popped[i])
    users[#users + 1] = popped[i]
  end
  redis.call('HINCRBY', stats, 'admitted', #users)
  active = active + #users
end
local length = redis.call('ZCARD', queue)
local ev
if repeated then
  ev = tonumber(redis.call('GET', events) or '0')
else
  redis.call('HSET', config, 'soldOut', sold_out and '1' or '0', 'rate', ARGV[8])
  ev = redis.call('INCR', events)
  local event = cjson.encode({ seq = ev, type = 'tick', admitted = users, expiresAt = expires,
    queueLength = length, active = active, soldOut = sold_out, paused = paused, rate = tonumber(ARGV[8]) })
  local outlook = ARGV[12] or ''
  if outlook ~= '' then
    redis.call('HSET', config, 'outlook', outlook)
    -- Spliced in as it came: the leader wrote it as JSON already.
    event = string.sub(event, 1, -2) .. ',"outlook":' .. outlook .. '}'
  end
  redis.call(ARGV[10], ARGV[9], event)
end
local reply = { 1, #users, length, active, available, sold_out and 1 or 0, ev }
for _, u in ipairs(users) do reply[#reply + 1] = u end
return reply
